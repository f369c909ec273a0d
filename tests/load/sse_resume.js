// Resume: read a stream for a while, reconnect with `Last-Event-ID`, and check
// that the first event after it is the very next event of the user's stream
// (nothing lost while away, nothing repeated). "Next" is taken from a
// reference stream of the same user held open for the whole test, so only
// event ids are compared: this holds for any deployment (real cameras or the
// demo publisher) and against any replica.
// Env: BASE_URL, TOKENS, ROUNDS (default 5), READ (default 3s).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { parseEvents, rising } from './sse_hold.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const TOKENS = (__ENV.TOKENS || '').split(',').filter((t) => t);
const ROUNDS = parseInt(__ENV.ROUNDS || '5', 10);
const READ = __ENV.READ || '3s';
const AWAY_S = 0.5;

const resumes = new Counter('sse_resumes');
const broken = new Counter('sse_resume_breaks');

export const options = {
  scenarios: { resume: { executor: 'per-vu-iterations', vus: Math.max(1, TOKENS.length), iterations: 1, maxDuration: '10m' } },
  thresholds: { sse_resume_breaks: ['count==0'], checks: ['rate==1'] },
};

const STREAM = `${BASE}/api/v1/devices/analysis/stream/all`;

function headers(token, lastId) {
  const h = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
  if (lastId) h['Last-Event-ID'] = lastId;
  return h;
}

function read(token, lastId) {
  const r = http.get(STREAM, { headers: headers(token, lastId), timeout: READ, responseCallback: http.expectedStatuses(0, 200) });
  return parseEvents(r.body);
}

export default async function () {
  const token = TOKENS[(__VU - 1) % TOKENS.length];
  const seconds = parseFloat(READ) || 3;
  const hold = `${Math.ceil(ROUNDS * (seconds + AWAY_S + 1) + 5)}s`;
  // The reference: one stream of this user, open before the first round
  // and after the last.
  const reference = http.asyncRequest('GET', STREAM, null, {
    headers: headers(token, null), timeout: hold, responseCallback: http.expectedStatuses(0, 200),
  });
  sleep(1);
  const rounds = [];
  let last = null;
  for (let round = 0; round < ROUNDS; round++) {
    const got = read(token, last);
    rounds.push({ resumedAfter: last, got });
    if (got.length > 0) last = got[got.length - 1].id;
    sleep(AWAY_S); // away for a while: events keep coming
  }
  const ref = parseEvents((await reference).body).map((e) => e.id);
  check(ref, { 'reference stream received events, ids rising': (r) => r.length > 0 && rising(r.map((id) => ({ id }))) });
  const position = new Map(ref.map((id, i) => [id, i]));
  let resumed = 0;
  for (const { resumedAfter, got } of rounds) {
    if (!resumedAfter || got.length === 0 || !position.has(resumedAfter)) continue;
    resumes.add(1);
    resumed++;
    const expected = ref[position.get(resumedAfter) + 1];
    const ok = got[0].id === expected;
    if (!ok) broken.add(1);
    check(got, { 'resumed with the event right after Last-Event-ID': () => ok });
  }
  check(resumed, { 'resumed at least once': (n) => ROUNDS < 2 || n > 0 });
}
