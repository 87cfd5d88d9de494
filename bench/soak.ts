/**
 * Soak (issue 7, point 5): steady traffic against the local stack serving Iris (JSON and V1
 * inference, metadata) for ten minutes by default, with the serving process's RSS sampled.
 * After the warm-up, RSS may grow by at most 10%: the exit code says whether it did, and whether
 * any request failed.
 *
 *   npx tsx bench/soak.ts [--minutes=10] [--warmup=60] [--sample=5] [--connections=N]
 *
 * `--warmup` and `--sample` are seconds; the warm-up is capped at a quarter of the run, so a
 * quick `--minutes=2` still measures 90 s of steady state. Not part of `npm test`.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { startServedStack } from '../test/support/hardening/served-stack.ts';
import { printTable, writeResults } from './lib/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
};

const MINUTES = arg('minutes', 10);
const DURATION_S = Math.round(MINUTES * 60);
const WARMUP_S = Math.min(arg('warmup', 60), DURATION_S / 4);
const SAMPLE_S = arg('sample', 5);
const WORKERS = availableParallelism();
/** enough to keep every instance busy, well inside the queue: load, not overload */
const CONNECTIONS = arg('connections', WORKERS * 2);
const MAX_GROWTH_PCT = 10;

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
};

interface Sample {
  seconds: number;
  rssMb: number;
  requests: number;
}

const stack = await startServedStack({ workers: WORKERS });
try {
  const first = stack.samples[0] ?? '{}';
  const instances = (JSON.parse(first) as { inputs: { data: number[] }[] }).inputs[0]?.data ?? [];
  const json = { 'content-type': 'application/json' };
  const requests = [
    ...stack.samples.map((body) => ({
      method: 'POST' as const,
      path: '/v2/models/iris/infer',
      headers: json,
      body,
    })),
    {
      method: 'POST' as const,
      path: '/v1/models/iris:predict',
      headers: json,
      body: JSON.stringify({ instances: [instances] }),
    },
    { method: 'GET' as const, path: '/v2/models/iris' },
  ];

  const samples: Sample[] = [];
  let answered = 0;
  const started = performance.now();
  const sampler = setInterval(() => {
    void stack.rssMb().then((rssMb) => {
      samples.push({ seconds: (performance.now() - started) / 1000, rssMb, requests: answered });
    });
  }, SAMPLE_S * 1000);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      { url: stack.url, connections: CONNECTIONS, duration: DURATION_S, timeout: 10, requests },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', () => {
      answered += 1;
    });
  });
  clearInterval(sampler);
  samples.push({
    seconds: (performance.now() - started) / 1000,
    rssMb: await stack.rssMb(),
    requests: answered,
  });

  const steady = samples.filter((s) => s.seconds >= WARMUP_S);
  const baseline = steady[0]?.rssMb ?? Number.NaN;
  const final = median(steady.slice(-3).map((s) => s.rssMb));
  const peak = Math.max(...steady.map((s) => s.rssMb));
  const growthPct = ((final - baseline) / baseline) * 100;
  const everyMinute = samples.filter(
    (s, i) =>
      i === samples.length - 1 ||
      Math.floor(s.seconds / 60) !== Math.floor((samples[i + 1]?.seconds ?? 0) / 60),
  );
  printTable(
    `soak: ${MINUTES} min, ${CONNECTIONS} connections, ${WORKERS} instances (warm-up ${WARMUP_S} s)`,
    ['t (s)', 'RSS MiB', 'requests'],
    everyMinute.map((s) => [Math.round(s.seconds), s.rssMb, s.requests]),
  );
  const failures: string[] = [];
  if (!(growthPct <= MAX_GROWTH_PCT)) {
    failures.push(`RSS grew ${growthPct.toFixed(1)}% after warm-up (limit ${MAX_GROWTH_PCT}%)`);
  }
  if (result.non2xx > 0) failures.push(`${result.non2xx} non-2xx answers`);
  if (result.errors > 0) failures.push(`${result.errors} errors (${result.timeouts} time-outs)`);
  printTable(
    'soak figures',
    ['figure', 'value'],
    [
      ['requests', result.requests.total],
      ['requests/s (mean)', result.requests.average],
      ['latency p50 / p99 (ms)', `${result.latency.p50} / ${result.latency.p99}`],
      ['non-2xx', result.non2xx],
      ['errors / time-outs', `${result.errors} / ${result.timeouts}`],
      ['RSS after warm-up (MiB)', baseline],
      ['RSS at end (MiB, median of last 3)', final],
      ['RSS peak after warm-up (MiB)', peak],
      ['RSS growth after warm-up (%)', growthPct],
    ],
  );
  for (const f of failures) console.log(`✗ ${f}`);
  if (failures.length === 0)
    console.log(`\nRSS growth within ${MAX_GROWTH_PCT}%, no failed request`);
  await writeResults('soak', {
    minutes: MINUTES,
    warmupSeconds: WARMUP_S,
    connections: CONNECTIONS,
    workers: WORKERS,
    requests: result.requests.total,
    latency: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rss: { baseline, final, peak, growthPct },
    samples,
    failures,
  });
  process.exitCode = failures.length === 0 ? 0 : 1;
} finally {
  await stack.close();
}
