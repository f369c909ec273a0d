// Hold SSE streams and verify what they received: every stream gets
// `analysis_result` events with ids of the documented form
// `<taskId>-<epochMillis>`, each task's ids rising, no id twice, and no gaps:
// the streams of one user are held at the same time, so an event that one of
// them received between another's first and last event must be in that one
// too. Only event ids are compared, so this holds for any deployment (real
// cameras or the demo publisher).
//
// Stock k6 (1.1) has no SSE client: `http.asyncRequest` with a timeout keeps a
// stream open, and on timeout the response still carries the body received so
// far (status 0, error code 1050), which is parsed here.
//
// Env: BASE_URL, TOKENS (comma-separated bearer tokens or API keys, one per
// user), STREAMS_PER_TOKEN (default 10, the per-user limit), HOLD (default 20s).
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const TOKENS = (__ENV.TOKENS || '').split(',').filter((t) => t);
const PER_TOKEN = parseInt(__ENV.STREAMS_PER_TOKEN || '10', 10);
const HOLD = __ENV.HOLD || '20s';

const events = new Counter('sse_events');
const gaps = new Counter('sse_gaps');
const perStream = new Trend('sse_events_per_stream');

export const options = {
  scenarios: { hold: { executor: 'shared-iterations', vus: 1, iterations: 1, maxDuration: '10m' } },
  thresholds: { sse_gaps: ['count==0'], checks: ['rate==1'] },
};

export function parseEvents(body) {
  const out = [];
  for (const block of (body || '').replace(/\r\n/g, '\n').split('\n\n')) {
    const ev = { data: [] };
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') ev.data.push(value);
      else ev[field] = value;
    }
    if (ev.event === 'analysis_result') out.push({ id: ev.id, data: JSON.parse(ev.data.join('\n')) });
  }
  return out;
}

export default async function () {
  if (TOKENS.length === 0) throw new Error('set TOKENS');
  const pending = [];
  for (const token of TOKENS) {
    for (let i = 0; i < PER_TOKEN; i++) {
      pending.push(
        http.asyncRequest('GET', `${BASE}/api/v1/devices/analysis/stream/all`, null, {
          headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' },
          timeout: HOLD,
          responseCallback: http.expectedStatuses(0, 200),
        }),
      );
    }
  }
  const responses = await Promise.all(pending);
  for (const r of responses) {
    const got = parseEvents(r.body);
    events.add(got.length);
    perStream.add(got.length);
    check(r, {
      'stream opened (held until the timeout)': (x) => x.error_code === 1050 || x.status === 200,
      'received events': () => got.length > 0,
      'ids are <taskId>-<epochMillis>': () => got.every((e) => /^[0-9a-f-]{36}-\d+$/.test(e.id)),
      'each task\'s ids rise, none twice': () => rising(got),
    });
  }
  // Gaps: per user, every id seen by any of its streams must be in each
  // stream that was open (between its first and last event) when it was sent.
  for (let t = 0; t < TOKENS.length; t++) {
    const streams = responses.slice(t * PER_TOKEN, (t + 1) * PER_TOKEN).map((r) => parseEvents(r.body));
    const all = new Map();
    for (const got of streams) for (const e of got) all.set(e.id, millis(e.id));
    let userGaps = 0;
    for (const got of streams) {
      if (got.length === 0) continue;
      const ids = new Set(got.map((e) => e.id));
      const [from, to] = [millis(got[0].id), millis(got[got.length - 1].id)];
      for (const [id, at] of all) if (at > from && at < to && !ids.has(id)) userGaps++;
    }
    gaps.add(userGaps);
    check(userGaps, { 'no gaps': (n) => n === 0 });
  }
}

/// `<taskId>-<epochMillis>` → epochMillis.
export function millis(id) {
  return parseInt(id.slice(id.lastIndexOf('-') + 1), 10);
}

/// Per task, ids strictly rising; no id twice.
export function rising(got) {
  const last = new Map();
  const seen = new Set();
  for (const e of got) {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    const task = e.id.slice(0, e.id.lastIndexOf('-'));
    if (last.has(task) && millis(e.id) <= last.get(task)) return false;
    last.set(task, millis(e.id));
  }
  return true;
}
