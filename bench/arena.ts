/**
 * onnxruntime's CPU memory arena and memory pattern on a burst (issue 18, point 2): the example
 * encoder runs `--requests` (100) INT64 [batch, seq] requests (default [64, 512]) in a fresh
 * process per setting, and the process RSS is read before, at its peak and after the last run.
 * The peak is the process's high-water mark (VmHWM). The baseline is onnxruntime's defaults (arena and pattern on), measured in the same run.
 *
 *   npx tsx bench/arena.ts [--requests=100] [--batch=64] [--seq=512]
 */
import { fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { ensureExampleModels } from '../models/generate.ts';
import { printTable, writeResults } from './lib/report.ts';

const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
};
const REQUESTS = arg('requests', 100);
const BATCH = arg('batch', 64);
const SEQ = arg('seq', 512);
const MB = 1024 * 1024;

interface Setting {
  name: string;
  options: Pick<ort.InferenceSession.SessionOptions, 'enableCpuMemArena' | 'enableMemPattern'>;
}
const SETTINGS: Setting[] = [
  { name: 'defaults (arena on, pattern on)', options: {} },
  { name: 'arena off', options: { enableCpuMemArena: false } },
  {
    name: 'arena off, pattern off',
    options: { enableCpuMemArena: false, enableMemPattern: false },
  },
];

interface Measure {
  setting: string;
  loadedMb: number;
  peakMb: number;
  afterMb: number;
  p50Ms: number;
}

/** VmHWM of this process (Linux), 0 elsewhere */
const highWaterMb = async (): Promise<number> => {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    return Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
};

/** the child: one setting, the runs, the figures */
async function measure(setting: Setting): Promise<Measure> {
  const { encoder } = await ensureExampleModels();
  const session = await ort.InferenceSession.create(await readFile(encoder.path), {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 2,
    logSeverityLevel: 3,
    ...setting.options,
  });
  const count = BATCH * SEQ;
  const ids = BigInt64Array.from({ length: count }, (_, i) => BigInt(100 + (i % 900)));
  const feeds = {
    input_ids: new ort.Tensor('int64', ids, [BATCH, SEQ]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(count).fill(1n), [BATCH, SEQ]),
  };
  const loadedMb = process.memoryUsage.rss() / MB;
  let peakMb = loadedMb;
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
    peakMb = Math.max(peakMb, process.memoryUsage.rss() / MB);
  }
  const afterMb = process.memoryUsage.rss() / MB;
  // run() holds the thread: the true peak is the kernel's high-water mark, where there is one
  peakMb = Math.max(peakMb, await highWaterMb());
  times.sort((a, b) => a - b);
  return { setting: setting.name, loadedMb, peakMb, afterMb, p50Ms: times[times.length >> 1] ?? 0 };
}

if (process.argv[2] === '--child') {
  const setting = SETTINGS[Number(process.argv[3])] as Setting;
  process.send?.(await measure(setting));
} else {
  const here = fileURLToPath(import.meta.url);
  const results: Measure[] = [];
  for (let i = 0; i < SETTINGS.length; i++) {
    results.push(
      await new Promise<Measure>((resolve, reject) => {
        const child = fork(here, ['--child', String(i), ...process.argv.slice(2)], {
          execArgv: ['--import', 'tsx'],
        });
        child.once('message', (m) => resolve(m as Measure));
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      }),
    );
  }
  const base = results[0];
  printTable(
    `encoder, ${REQUESTS} requests of INT64 [${BATCH}, ${SEQ}] x2, one process per setting`,
    [
      'setting',
      'loaded MB',
      'peak MB',
      'after MB',
      'kept MB',
      'p50 ms',
      'kept / defaults',
      'p50 / defaults',
    ],
    results.map((r) => [
      r.setting,
      r.loadedMb,
      r.peakMb,
      r.afterMb,
      r.afterMb - r.loadedMb,
      r.p50Ms,
      base === undefined ? undefined : (r.afterMb - r.loadedMb) / (base.afterMb - base.loadedMb),
      base === undefined ? undefined : r.p50Ms / base.p50Ms,
    ]),
  );
  await writeResults('arena', { requests: REQUESTS, batch: BATCH, seq: SEQ, results });
}
