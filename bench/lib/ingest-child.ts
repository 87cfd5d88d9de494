// One ingest in a process of its own, for bench/ingest-memory.ts: prints the process's peak RSS.
//   tsx bench/lib/ingest-child.ts <incoming key>      ingest that upload from the local S3
//   tsx bench/lib/ingest-child.ts --baseline <model>  the fixed cost: same imports, one small session
import { readFileSync } from 'node:fs';
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
  // and where the resident memory is: anonymous (of it, glibc's brk heap and V8's heap) and files
  // (code, mostly); MAAS_BENCH_TRACE=2 adds the step's log attributes
  const mb = (bytes: number) => Math.round(bytes / 1048576);
  const mallocHeapMb = (): number => {
    const smaps = readFileSync('/proc/self/smaps', 'utf8');
    const at = smaps.indexOf(' [heap]\n');
    const rss = at < 0 ? undefined : /\nRss:\s+(\d+) kB/.exec(smaps.slice(at));
    return Math.round(Number(rss?.[1] ?? 0) / 1024);
  };
  const statusMb = (status: string, field: string) =>
    Math.round(Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
  const trace = (message: string, ...attributes: Record<string, unknown>[]) => {
    const m = process.memoryUsage();
    const status = readFileSync('/proc/self/status', 'utf8');
    const details = process.env.MAAS_BENCH_TRACE === '2' ? ` ${JSON.stringify(attributes)}` : '';
    process.stderr.write(
      `[rss ${mb(m.rss)} MB (anon ${statusMb(status, 'RssAnon')}, file ${statusMb(status, 'RssFile')}), ` +
        `malloc heap ${mallocHeapMb()}, js heap ${mb(m.heapTotal)}, ab ${mb(m.arrayBuffers)}, ` +
        `peak ${mb(process.resourceUsage().maxRSS * 1024)} MB] ${message}${details}\n`,
    );
  };
  const logger =
    process.env.MAAS_BENCH_TRACE === '1' || process.env.MAAS_BENCH_TRACE === '2'
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
