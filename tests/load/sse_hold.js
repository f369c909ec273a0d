// Hold SSE streams and verify what they received: every stream gets
// `analysis_result` events with gap-free `seq` numbers (the demo publisher's
// sequence) and ids of the documented form `<taskId>-<epochMillis>`.
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
    let streamGaps = 0;
    for (let i = 1; i < got.length; i++) {
      const [a, b] = [got[i - 1].data, got[i].data];
      if (a.analysisId === b.analysisId && b.seq !== a.seq + 1) streamGaps++;
    }
    gaps.add(streamGaps);
    check(r, {
      'stream opened (held until the timeout)': (x) => x.error_code === 1050 || x.status === 200,
      'received events': () => got.length > 0,
      'ids are <taskId>-<epochMillis>': () => got.every((e) => /^[0-9a-f-]{36}-\d+$/.test(e.id)),
      'no gaps': () => streamGaps === 0,
    });
  }
}
