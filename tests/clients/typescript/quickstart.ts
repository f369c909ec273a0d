// The README quickstart in TypeScript, on a client generated from the OpenAPI document.
//
// It signs up, creates a personal API key, registers a push camera (an edge
// device that sends its own JPEG frames) with a queue-analysis scene and an
// alert rule, creates the camera's device key and sends a heartbeat, starts
// analysis, pushes frames, reads live results from the Server-Sent Events
// stream, reads the stored snapshots, acknowledges the alert the rule fired,
// reads the scene's latest state, and stops analysis.
//
// Generate the client (@hey-api/openapi-ts, fetch client) into ./generated next
// to this file, type-check, build and run it on Node 20 against a platform
// (`PANOPTES__OUTBOUND__ALLOW_PRIVATE=true bash .ci/up.sh --listen 127.0.0.1:8080 --data-dir .data`):
//
//   npm ci
//   npx openapi-ts -i ../../../openapi/openapi.json -o generated -c @hey-api/client-fetch
//   npx tsc --strict
//   node dist/quickstart.js --base-url http://127.0.0.1:8080 --frame ../../../workers/tests/fixtures/frames/vtest-200.jpg
//
// A push device still needs an `rtspUrl`, though it is never dialled: the default
// is on loopback, which the platform accepts only with `outbound.allow_private`
// (tests/clients/run.sh sets it); `--rtsp-url` gives another.
//
// Every wait has a deadline; any failure exits with status 1 and says what failed.

import { openAsBlob } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';

import { createClient, createConfig } from './generated/client/index.js';
import {
  acknowledgeAlert,
  createAlertRule,
  createApiKey,
  createDevice,
  createScene,
  deviceHeartbeat,
  getSceneLatest,
  listAlerts,
  listSnapshots,
  pushFrame,
  signup,
  startAnalysis,
  stopAnalysis,
  type AnalysisResult,
  type DetectClass,
  type ErrorResponse,
  type StreamTokenEvent,
} from './generated/index.js';

type Client = ReturnType<typeof createClient>;

class QuickstartError extends Error {}

/** JSON type of each field of T; `?` marks a field T has as optional (it may be absent or null). */
type FieldTypes<T> = {
  [K in keyof T]-?: undefined extends T[K] ? `${JsonType}?` : JsonType;
};
type JsonType = 'string' | 'number' | 'boolean' | 'object';

// Every field of the generated AnalysisResult type: tsc refuses this object if the
// type gains or loses a field, or a field becomes required or optional.
const RESULT_FIELDS = {
  deviceId: 'string',
  analysisId: 'string',
  sceneId: 'string',
  timestamp: 'string',
  detections: 'object',
  metrics: 'object?',
  computeNodeId: 'string',
  processingMs: 'number',
  snapshotUrl: 'string?',
} as const satisfies FieldTypes<AnalysisResult>;

/** Checks `value` has each field of `fields` with its JSON type; the value typed as T. */
function checkFields<T>(what: string, value: unknown, fields: FieldTypes<T>): T {
  if (typeof value !== 'object' || value === null) {
    throw new QuickstartError(`${what} is not an object: ${JSON.stringify(value)}`);
  }
  const record = value as Record<string, unknown>;
  for (const [field, spec] of Object.entries<string>(fields)) {
    const got = record[field];
    const optional = spec.endsWith('?');
    if (optional && (got === undefined || got === null)) continue;
    if (typeof got !== spec.replace('?', '') || got === null) {
      throw new QuickstartError(`${what}.${field} is not a ${spec}: ${JSON.stringify(value).slice(0, 300)}`);
    }
  }
  return value as T;
}

/** What a generated SDK function resolves to (default `responseStyle: 'fields'`);
 * `response` is undefined when fetch itself failed (refused, timed out). */
type Result<T> = ({ data: T; error: undefined } | { data: undefined; error: unknown }) & {
  response: Response | undefined;
};

/** A fetch failure, with its cause (Node puts the socket error there). */
const failure = (e: unknown) =>
  e instanceof Error ? `${e.message}${e.cause ? ` (${String(e.cause)})` : ''}` : String(e);

/** The body of a call that answered `expected`, or a QuickstartError with the
 * API's error code, message and request id. */
async function ok<T>(what: string, expected: number, call: Promise<Result<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response) {
    throw new QuickstartError(`${what}: ${failure(error)}`);
  }
  if (response.status === expected && data !== undefined) {
    return data;
  }
  const e = error as Partial<ErrorResponse> | undefined;
  const why = e?.error
    ? `${e.error.code} ${JSON.stringify(e.message)} (request id ${e.meta?.requestId})`
    : JSON.stringify(error ?? data).slice(0, 300);
  throw new QuickstartError(`${what}: HTTP ${response.status} ${why}`);
}

/** Prints each step with the time it took. */
class Steps {
  private readonly start = performance.now();
  private last = this.start;

  done(message: string): void {
    const now = performance.now();
    const total = ((now - this.start) / 1000).toFixed(2).padStart(6);
    const step = ((now - this.last) / 1000).toFixed(2).padStart(5);
    console.log(`[typescript] ${total}s (+${step}s) ${message}`);
    this.last = now;
  }
}

/** Waits `ms`, or less when `signal` aborts. */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

/** An edge camera: pushes one JPEG about `fps` times a second until stopped,
 * waiting out `Retry-After` when the platform says 429. */
class FramePusher {
  accepted = 0;
  error: string | undefined;
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly camera: Client,
    private readonly deviceId: string,
    private readonly jpeg: Blob,
    private readonly fps: number,
  ) {}

  start(): void {
    this.running = this.run().catch((e: unknown) => {
      this.error = `push a frame: ${String(e)}`;
    });
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      const { error, response } = await pushFrame({
        client: this.camera,
        path: { id: this.deviceId },
        body: this.jpeg,
      });
      let pause = 1000 / this.fps;
      if (!response) {
        this.error = `push a frame: ${failure(error)}`;
        return;
      } else if (response.status === 202) {
        this.accepted += 1;
      } else if (response.status === 429) {
        pause = Math.min(Number(response.headers.get('retry-after') ?? '1'), 5) * 1000;
      } else {
        const e = error as Partial<ErrorResponse> | undefined;
        this.error = `push a frame: HTTP ${response.status} ${e?.error?.code ?? ''} ${e?.message ?? ''}`;
        return;
      }
      await sleep(pause, signal);
    }
  }
}

/** [event name, data] of each event of a text/event-stream. Comments
 * (keep-alives) and `retry:`/`id:` are skipped. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<[string, string]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let name = 'message';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        throw new QuickstartError('the event stream ended');
      }
      buffered += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffered.search(/\r?\n/)) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(buffered[newline] === '\r' ? newline + 2 : newline + 1);
        if (line === '') { // a blank line ends an event
          if (data.length > 0) {
            yield [name, data.join('\n')];
          }
          name = 'message';
          data = [];
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          value = value.startsWith(' ') ? value.slice(1) : value;
          if (field === 'event') name = value;
          if (field === 'data') data.push(value);
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** Parse an `analysis_result` event's data as the generated type and check it. */
function checkResult(data: string, deviceId: string, sceneId: string): AnalysisResult {
  const result = checkFields<AnalysisResult>('analysis_result', JSON.parse(data), RESULT_FIELDS);
  if (result.deviceId !== deviceId || result.sceneId !== sceneId) {
    throw new QuickstartError(`analysis_result for another device or scene: ${data.slice(0, 300)}`);
  }
  if (!Array.isArray(result.detections) || Number.isNaN(Date.parse(result.timestamp))) {
    throw new QuickstartError(`analysis_result detections or timestamp malformed: ${data.slice(0, 300)}`);
  }
  // The scene has a queue zone, so every frame is measured.
  const metrics = result.metrics;
  if (!metrics || !Number.isInteger(metrics.inQueue) || !Number.isInteger(metrics.inService)) {
    throw new QuickstartError(`analysis_result metrics are not counts: ${JSON.stringify(metrics)}`);
  }
  const classes: DetectClass[] = ['person', 'vehicle'];
  for (const d of result.detections) {
    if (!classes.includes(d.type) || !(d.confidence >= 0 && d.confidence <= 1) || typeof d.boundingBox !== 'object') {
      throw new QuickstartError(`analysis_result detection malformed: ${JSON.stringify(d)}`);
    }
  }
  return result;
}

async function quickstart(baseUrl: string, framePath: string, rtspUrl: string, timeoutMs: number): Promise<void> {
  const steps = new Steps();
  const jpeg = await openAsBlob(framePath, { type: 'image/jpeg' });
  // A client per credential; every request it sends has a 10 s deadline.
  const clientFor = (token?: string) => createClient(createConfig({
    baseUrl,
    auth: token,
    fetch: (input: RequestInfo | URL, init?: RequestInit) =>
      fetch(input, { ...init, signal: AbortSignal.timeout(10_000) }),
  }));

  // 1. An account; the session token manages API keys.
  const anonymous = clientFor();
  const email = `quickstart-${crypto.randomUUID().replaceAll('-', '').slice(0, 12)}@example.com`;
  const session = (await ok('sign up', 201,
    signup({ client: anonymous, body: { email, password: 'a long password' } }))).data;
  const owner = clientFor(session.token);
  steps.done(`signed up as ${session.user.email}`);

  // 2. A personal API key (the secret is shown once) for everything else.
  const personal = (await ok('create a personal API key', 201,
    createApiKey({ client: owner, body: { name: 'quickstart', type: 'personal' } }))).data;
  const api = clientFor(personal.key);
  steps.done(`personal API key ${personal.apiKey.id} (${personal.apiKey.scopes.length} scopes)`);

  // 3. A push camera: it sends its own frames, so its RTSP URL is never dialled
  //    (the platform still wants one).
  const device = (await ok('create a push device', 201, createDevice({
    client: api,
    body: { name: 'Entrance (push)', rtspUrl, type: 'usb_camera' },
  }))).data;
  steps.done(`device ${device.id} (${device.type}, push ${device.pushEnabled}, ${device.status})`);

  // 4. A queue-analysis scene with a queue zone (frame fractions).
  const scene = (await ok('create a scene', 201, createScene({
    client: api,
    body: {
      deviceId: device.id,
      name: 'Checkout line',
      analysisType: 'queue_analysis',
      config: { zones: { queueZone: { type: 'polygon', points: [[0.1, 0.2], [0.6, 0.2], [0.6, 0.9], [0.1, 0.9]] } } },
    },
  }))).data;
  steps.done(`scene ${scene.id} (${scene.analysisType})`);

  // 4b. An alert rule on the scene's metrics (here one that holds at once,
  //     so the quickstart sees an alert: at least 0 people queued).
  const rule = (await ok('create an alert rule', 201, createAlertRule({
    client: api,
    body: { sceneId: scene.id, name: 'Anyone queuing', metricPath: 'current.inQueue', operator: 'gte', threshold: 0 },
  }))).data;
  steps.done(`alert rule ${rule.id}: ${rule.metricPath} ${rule.operator} ${rule.threshold}`);

  // 5. The camera's own key (scopes device:read, device:heartbeat, device:sync,
  //    task:read; it reaches this device only). A heartbeat brings it online.
  const deviceKey = (await ok('create a device key', 201, createApiKey({
    client: owner, body: { name: 'edge box', type: 'device', deviceId: device.id },
  }))).data;
  const camera = clientFor(deviceKey.key);
  const beat = (await ok('heartbeat', 200,
    deviceHeartbeat({ client: camera, path: { id: device.id } }))).data;
  steps.done(`device key ${deviceKey.apiKey.id}; heartbeat: device ${beat.status}, max ${beat.maxFps} fps`);

  // 6. Start analysis.
  const startedAt = new Date();
  const task = (await ok('start analysis', 201, startAnalysis({
    client: api, path: { id: device.id }, body: { sceneId: scene.id },
  }))).data;
  steps.done(`analysis task ${task.id} ${task.status}`);

  // 7. Live results: open the stream, then push frames as the camera would.
  const deadline = AbortSignal.timeout(timeoutMs);
  const pusher = new FramePusher(camera, device.id, jpeg, Math.min(4, beat.maxFps));
  try {
    const stream = await fetch(`${baseUrl}/api/v1/devices/${device.id}/analysis/stream`, {
      headers: { authorization: `Bearer ${personal.key}`, accept: 'text/event-stream' },
      signal: deadline,
    });
    if (stream.status !== 200 || !stream.body) {
      throw new QuickstartError(`open the event stream: HTTP ${stream.status} ${(await stream.text()).slice(0, 300)}`);
    }
    const events = sseEvents(stream.body);
    const first = await events.next();
    if (first.done || first.value[0] !== 'stream_token') {
      throw new QuickstartError(`the stream's first event is not stream_token: ${JSON.stringify(first.value)}`);
    }
    // For reconnecting (kept secret).
    const token = checkFields<StreamTokenEvent>('stream_token', JSON.parse(first.value[1]), { streamToken: 'string' });
    steps.done(`event stream open (stream token: ${token.streamToken.length} characters)`);
    pusher.start();
    let result: AnalysisResult | undefined;
    try {
      for await (const [name, data] of events) {
        if (pusher.error) throw new QuickstartError(pusher.error);
        if (name === 'analysis_result') {
          result = checkResult(data, device.id, scene.id);
          break;
        }
      }
    } catch (e) {
      if (!deadline.aborted) throw e;
      throw new QuickstartError(pusher.error
        ?? `no analysis_result within ${timeoutMs / 1000}s (${pusher.accepted} frames accepted)`);
    }
    if (!result) throw new QuickstartError('no analysis_result');
    steps.done(`analysis_result after ${pusher.accepted} frames: ${result.detections.length} detections `
      + `in ${result.processingMs.toFixed(0)} ms on ${result.computeNodeId}, `
      + `inQueue ${result.metrics?.inQueue}, inService ${result.metrics?.inService}`);

    // 8. Stored metrics: a snapshot every analytics.persist_interval_ms of capture time.
    const since = new Date(startedAt.getTime() - 60_000).toISOString();
    for (;;) {
      if (pusher.error) throw new QuickstartError(pusher.error);
      if (deadline.aborted) throw new QuickstartError(`no stored snapshot within ${timeoutMs / 1000}s`);
      const page = await ok('list snapshots', 200, listSnapshots({
        client: api, query: { sceneId: scene.id, startDate: since, limit: 50 },
      }));
      const newest = page.data[0];
      if (newest) {
        steps.done(`${page.meta.pagination?.total ?? page.data.length} snapshot(s); newest ${newest.windowEnd}: `
          + `inQueue ${newest.currentMetrics.inQueue}, avg ${newest.currentMetrics.avgInQueue.toFixed(2)}`);
        break;
      }
      await sleep(500, deadline);
    }
  } finally {
    await pusher.stop();
  }
  // 9. The rule fired on the first result (the notify role): one alert, acknowledged here.
  const alertsDeadline = AbortSignal.timeout(timeoutMs);
  let alert;
  for (;;) {
    const page = await ok('list alerts', 200, listAlerts({ client: api, query: { sceneId: scene.id } }));
    alert = page.data[0];
    if (alert) break;
    if (alertsDeadline.aborted) throw new QuickstartError(`no alert within ${timeoutMs / 1000}s`);
    await sleep(500, alertsDeadline);
  }
  const acked = (await ok('acknowledge', 200,
    acknowledgeAlert({ client: api, path: { id: alert.id } }))).data;
  steps.done(`alert ${alert.id}: ${alert.metricPath} = ${alert.value} (${alert.severity}); ${acked.status}`);

  const latest = (await ok('scene latest', 200,
    getSceneLatest({ client: api, path: { id: scene.id } }))).data;
  if (!latest.analyzing || !latest.snapshot) {
    throw new QuickstartError(`scene latest: analyzing ${latest.analyzing}, snapshot ${JSON.stringify(latest.snapshot)}`);
  }
  steps.done(`scene latest: analyzing ${latest.analyzing}, snapshot ${latest.snapshot.id}`);

  const stopped = (await ok('stop analysis', 200,
    stopAnalysis({ client: api, path: { id: device.id } }))).data;
  steps.done(`analysis ${stopped.status} (${stopped.stopReason}); ${pusher.accepted} frames pushed`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string', default: process.env.PANOPTES_BASE_URL ?? 'http://127.0.0.1:8080' },
      frame: { type: 'string', default: '../../../workers/tests/fixtures/frames/vtest-200.jpg' },
      'rtsp-url': { type: 'string', default: 'rtsp://127.0.0.1:554/unused' },
      timeout: { type: 'string', default: '60' },
    },
  });
  const baseUrl = values['base-url'].replace(/\/+$/, '');
  const timeoutS = Number(values.timeout);
  if (!(timeoutS > 0)) {
    console.error(`[typescript] --timeout must be a positive number of seconds, not ${values.timeout}`);
    return 2;
  }
  try {
    await quickstart(baseUrl, values.frame, values['rtsp-url'], timeoutS * 1000);
  } catch (e) {
    const why = e instanceof QuickstartError ? e.message : `${baseUrl}: ${failure(e)}`;
    console.error(`[typescript] quickstart FAILED: ${why}`);
    return 1;
  }
  console.log('[typescript] quickstart OK');
  return 0;
}

process.exitCode = await main();
