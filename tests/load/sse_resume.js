// Resume: read a stream for a while, then reconnect with `Last-Event-ID` and
// check that the first event after it is the next one in sequence (nothing
// lost while away, nothing repeated). Works against any replica of a
// deployment. Env: BASE_URL, TOKENS, ROUNDS (default 5), READ (default 3s).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { parseEvents } from './sse_hold.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const TOKENS = (__ENV.TOKENS || '').split(',').filter((t) => t);
const ROUNDS = parseInt(__ENV.ROUNDS || '5', 10);
const READ = __ENV.READ || '3s';

const resumes = new Counter('sse_resumes');
const broken = new Counter('sse_resume_breaks');

export const options = {
  scenarios: { resume: { executor: 'per-vu-iterations', vus: Math.max(1, TOKENS.length), iterations: 1, maxDuration: '10m' } },
  thresholds: { sse_resume_breaks: ['count==0'], checks: ['rate==1'] },
};

function read(token, lastId) {
  const headers = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' };
  if (lastId) headers['Last-Event-ID'] = lastId;
  const r = http.get(`${BASE}/api/v1/devices/analysis/stream/all`, {
    headers, timeout: READ, responseCallback: http.expectedStatuses(0, 200),
  });
  return parseEvents(r.body);
}

export default function () {
  const token = TOKENS[(__VU - 1) % TOKENS.length];
  let last = null;
  for (let round = 0; round < ROUNDS; round++) {
    const got = read(token, last && last.id);
    if (last && got.length > 0) {
      resumes.add(1);
      const first = got[0].data;
      const ok = first.analysisId !== last.data.analysisId || first.seq === last.data.seq + 1;
      if (!ok) broken.add(1);
      check(got, { 'resumed right after the last event': () => ok });
    }
    if (got.length > 0) last = got[got.length - 1];
    sleep(0.5); // away for a while: events keep coming
  }
  check(resumes, { 'resumed at least once': () => ROUNDS < 2 || last !== null });
}
