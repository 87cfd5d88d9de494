// One ingest in a process of its own, for bench/ingest-memory.ts: prints the process's peak RSS.
//   tsx bench/lib/ingest-child.ts <incoming key>      ingest that upload from the local S3
//   tsx bench/lib/ingest-child.ts --baseline <model>  the fixed cost: same imports, one small session
import { readFile } from 'node:fs/promises';
import { config } from '../../src/config/index.ts';
import { INGEST_DEFAULTS, ingestUpload } from '../../src/ingest/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { createSession } from '../../src/runtime/index.ts';
import { S3ObjectStore } from '../../src/storage/s3.ts';

const [first, second] = process.argv.slice(2);
const skip = new Set((process.env.MAAS_BENCH_SKIP ?? '').split(','));
let result: unknown;
if (first === '--baseline') {
  const s = await createSession(new Uint8Array(await readFile(second!)));
  await s.release();
  result = 'baseline';
} else {
  const registry = new Registry(new S3ObjectStore(config().storage));
  // MAAS_BENCH_TRACE=1: each step ingest logs, with the peak so far, on stderr (which step grows it)
  const mb = (bytes: number) => Math.round(bytes / 1048576);
  const trace = (message: string) =>
    process.stderr.write(
      `[rss ${mb(process.memoryUsage().rss)} MB, heap ${mb(process.memoryUsage().heapTotal)}, ab ${mb(process.memoryUsage().arrayBuffers)}, peak ${mb(process.resourceUsage().maxRSS * 1024)} MB] ${message}\n`,
    );
  const logger =
    process.env.MAAS_BENCH_TRACE === '1'
      ? { debug: trace, info: trace, warn: trace, error: trace }
      : undefined;
  result = await ingestUpload(
    { bucketKey: first! },
    {
      registry,
      settings: { ...INGEST_DEFAULTS, intraOpThreads: 2 },
      // to see what each step costs: MAAS_BENCH_SKIP=static,preoptimize,quantize
      staticQuantization: !skip.has('static'),
      preOptimize: !skip.has('preoptimize'),
      ...(logger === undefined ? {} : { logger }),
    },
  );
}
process.stdout.write(
  `${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, result })}\n`,
);
process.exit(0);
