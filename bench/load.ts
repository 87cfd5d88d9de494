/**
 * Load at and past saturation (issue 7, point 5): autocannon against the local stack (the local
 * S3 and the local HTTP API with the real predict handler, in a child process) serving the Iris
 * example model, at rising numbers of concurrent connections. Each level reports the successful
 * requests per second, p50/p99 of the 200s, and what was shed (429 from the full queue, 503) with
 * its own p50/p99, errors and time-outs.
 *
 * Expected: no error of any kind while the connections fit the instances and their queue
 * (≤ workers + queue limit); past that, excess requests are refused fast with 429 (or 503),
 * never left to time out.
 *
 *   npx tsx bench/load.ts [--duration=5] [--workers=N] [--queue=64] [--levels=1,2,4,...]
 *
 * Exits non-zero when an expectation fails.
 */
import { availableParallelism } from 'node:os';
import autocannon from 'autocannon';
import { startServedStack } from '../test/support/hardening/served-stack.ts';
import { printTable, writeResults } from './lib/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const DURATION_S = Number(arg('duration') ?? 5);
const WORKERS = Number(arg('workers') ?? availableParallelism());
const QUEUE = Number(arg('queue') ?? 64);
const LEVELS = (arg('levels') ?? '1,2,4,8,16,32,64,128,256,512').split(',').map(Number);
/** a shed request slower than this is no better than a time-out for its client */
const FAST_SHED_MS = 1000;
const TIMEOUT_S = 10;

const percentile = (sorted: readonly number[], p: number): number | undefined =>
  sorted.length === 0
    ? undefined
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

interface Level {
  connections: number;
  okPerSecond: number;
  ok: number;
  p50: number | undefined;
  p99: number | undefined;
  shed: number;
  shedP50: number | undefined;
  shedP99: number | undefined;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
}

const run = (
  url: string,
  samples: readonly string[],
  connections: number,
  seconds: number,
): Promise<Level> =>
  new Promise((resolve, reject) => {
    const latencies = new Map<number, number[]>();
    const instance = autocannon(
      {
        url,
        connections,
        duration: seconds,
        timeout: TIMEOUT_S,
        requests: samples.map((body) => ({
          method: 'POST',
          path: '/v2/models/iris/infer',
          headers: { 'content-type': 'application/json' },
          body,
        })),
      },
      (err, result) => {
        if (err) return reject(err);
        const sorted = (status: number) => (latencies.get(status) ?? []).sort((a, b) => a - b);
        const ok = sorted(200);
        const shed = [...sorted(429), ...sorted(503)].sort((a, b) => a - b);
        const statuses = Object.fromEntries(
          [...latencies.entries()].map(([status, list]) => [String(status), list.length]),
        );
        resolve({
          connections,
          okPerSecond: ok.length / seconds,
          ok: ok.length,
          p50: percentile(ok, 50),
          p99: percentile(ok, 99),
          shed: shed.length,
          shedP50: percentile(shed, 50),
          shedP99: percentile(shed, 99),
          statuses,
          errors: result.errors - result.timeouts,
          timeouts: result.timeouts,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      let list = latencies.get(statusCode);
      if (list === undefined) {
        list = [];
        latencies.set(statusCode, list);
      }
      list.push(responseTime);
    });
  });

const stack = await startServedStack({ workers: WORKERS, queueLimit: QUEUE });
try {
  // every instance cold-loads Iris on its first request: not part of any level
  await run(stack.url, stack.samples, WORKERS, 2);
  const levels: Level[] = [];
  for (const connections of LEVELS) {
    levels.push(await run(stack.url, stack.samples, connections, DURATION_S));
  }
  const best = Math.max(...levels.map((l) => l.okPerSecond));
  const saturation = levels.find((l) => l.okPerSecond >= 0.95 * best)?.connections ?? 0;
  const capacity = WORKERS + QUEUE;
  printTable(
    `load: Iris through the local API, ${WORKERS} instances, queue ${QUEUE}, ${DURATION_S} s per level ` +
      `(saturation from ${saturation} connections; shedding past ${capacity})`,
    [
      'connections',
      'ok/s',
      'p50 ms',
      'p99 ms',
      'shed',
      'shed p50',
      'shed p99',
      'statuses',
      'errors',
      'timeouts',
    ],
    levels.map((l) => [
      l.connections,
      l.okPerSecond,
      l.p50,
      l.p99,
      l.shed,
      l.shedP50,
      l.shedP99,
      Object.entries(l.statuses)
        .map(([s, n]) => `${s}×${n}`)
        .join(' '),
      l.errors,
      l.timeouts,
    ]),
  );
  const failures: string[] = [];
  for (const l of levels) {
    const refused = Object.entries(l.statuses).filter(([s]) => s !== '200');
    if (l.connections <= capacity && (refused.length > 0 || l.errors > 0 || l.timeouts > 0)) {
      failures.push(
        `${l.connections} connections fit the instances and queue but got ${JSON.stringify(l)}`,
      );
    }
    if (l.timeouts > 0) failures.push(`${l.connections} connections: ${l.timeouts} time-outs`);
    const unexpected = refused.filter(([s]) => s !== '429' && s !== '503');
    if (unexpected.length > 0)
      failures.push(`${l.connections} connections: ${JSON.stringify(unexpected)}`);
    if ((l.shedP99 ?? 0) > FAST_SHED_MS) {
      failures.push(`${l.connections} connections: shed p99 ${l.shedP99} ms is not fast`);
    }
  }
  if (!levels.some((l) => l.shed > 0)) failures.push('no level went past saturation into shedding');
  for (const f of failures) console.log(`✗ ${f}`);
  console.log(failures.length === 0 ? '\nall load expectations hold' : '');
  await writeResults('load', {
    workers: WORKERS,
    queueLimit: QUEUE,
    durationSeconds: DURATION_S,
    saturationConnections: saturation,
    levels,
    failures,
  });
  process.exitCode = failures.length === 0 ? 0 : 1;
} finally {
  await stack.close();
}
