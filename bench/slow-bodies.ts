/**
 * Slow large bodies (issue 18, point 3): `--connections` loopback clients (150) each POST a
 * `--mib` (5) MiB body to the local API serving Iris, in 64 KiB chunks with a pause between them,
 * all at once. Measures the serving processes' RSS (API, S3 and handler instances) before and at
 * its peak, and how the requests were answered: once with the body budget lifted (no cap, as the
 * API was before), once with the default `MAAS_MAX_BODY_BYTES_IN_FLIGHT`. Bounded: every client
 * sends at most its body and gives up after `--seconds` (60).
 *
 *   npx tsx bench/slow-bodies.ts [--connections=150] [--mib=5] [--pause-ms=20]
 */
import { connect } from 'node:net';
import { DEFAULTS } from '../src/config/index.ts';
import { startServedStack } from '../test/support/hardening/served-stack.ts';
import { printTable, writeResults } from './lib/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
};
const CONNECTIONS = arg('connections', 150);
const BODY_BYTES = arg('mib', 5) * 1024 * 1024;
const PAUSE_MS = arg('pause-ms', 20);
const GIVE_UP_MS = arg('seconds', 60) * 1000;
const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;

/** one client: headers, then the body chunk by chunk until done or answered; its status (0: none) */
const slowClient = (port: number): Promise<number> =>
  new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(answer)?.[1] ?? 0));
    };
    const timer = setTimeout(finish, GIVE_UP_MS);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.write(
      'POST /v2/models/iris/infer HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n' +
        `content-length: ${BODY_BYTES}\r\n\r\n`,
    );
    const chunk = Buffer.alloc(CHUNK, 0x20);
    let sent = 0;
    const pump = (): void => {
      if (done || sent >= BODY_BYTES) return;
      const n = Math.min(CHUNK, BODY_BYTES - sent);
      sent += n;
      socket.write(n === CHUNK ? chunk : chunk.subarray(0, n), () => setTimeout(pump, PAUSE_MS));
    };
    pump();
  });

interface Run {
  config: string;
  budgetMiB: number | null;
  rssBeforeMb: number;
  rssPeakMb: number;
  statuses: Record<string, number>;
}

const attack = async (config: string, budget: number | undefined): Promise<Run> => {
  const stack = await startServedStack(
    budget === undefined ? {} : { maxBodyBytesInFlight: budget },
  );
  try {
    const port = Number(new URL(stack.url).port);
    await fetch(`${stack.url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stack.samples[0] ?? '{}',
    });
    const rssBeforeMb = await stack.rssMb();
    let rssPeakMb = rssBeforeMb;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        rssPeakMb = Math.max(rssPeakMb, await stack.rssMb());
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const results = await Promise.all(Array.from({ length: CONNECTIONS }, () => slowClient(port)));
    sampling = false;
    await sampler;
    const statuses: Record<string, number> = {};
    for (const status of results) statuses[status] = (statuses[status] ?? 0) + 1;
    return {
      config,
      budgetMiB: budget === undefined ? DEFAULTS.maxBodyBytesInFlight / MiB : budget / MiB,
      rssBeforeMb,
      rssPeakMb,
      statuses,
    };
  } finally {
    await stack.close();
  }
};

const runs = [
  // the API before the budget: every body read and held
  await attack('no budget', Number.MAX_SAFE_INTEGER),
  await attack('default budget', undefined),
];
const [baseline, capped] = runs;
printTable(
  `${CONNECTIONS} clients × ${BODY_BYTES / MiB} MiB bodies, ${CHUNK / 1024} KiB every ${PAUSE_MS} ms`,
  ['config', 'budget MiB', 'RSS before MB', 'RSS peak MB', 'growth MB', 'answers'],
  runs.map((r) => [
    r.config,
    r.budgetMiB !== null && r.budgetMiB > 1e9 ? 'none' : (r.budgetMiB ?? undefined),
    r.rssBeforeMb,
    r.rssPeakMb,
    r.rssPeakMb - r.rssBeforeMb,
    Object.entries(r.statuses)
      .map(([status, n]) => `${n}×${status === '0' ? 'none' : status}`)
      .join(' '),
  ]),
);
const growthRatio =
  baseline !== undefined && capped !== undefined
    ? (capped.rssPeakMb - capped.rssBeforeMb) / (baseline.rssPeakMb - baseline.rssBeforeMb)
    : undefined;
console.log(`\nRSS growth with the default budget / without: ${growthRatio?.toFixed(3)}`);
await writeResults('slow-bodies', {
  connections: CONNECTIONS,
  bodyBytes: BODY_BYTES,
  pauseMs: PAUSE_MS,
  runs,
  growthRatio,
});
