/**
 * Version churn under traffic (issue 7, point 3): 1,000 promotions, rollbacks and canary changes
 * across six versions of a model, made with the guard's promote/rollback functions and the
 * registry, while two clients predict through the protocol app over the runtime and the local S3
 * with a 100 ms alias TTL. Checks that every answer came from a version that held its role
 * (production or candidate) within [request start − TTL − longest alias read, request end], that
 * the session cache stays within its bound (evicted sessions released), and reports RSS.
 *
 *   npx tsx bench/churn.ts [--transitions=1000] [--ttl=100] [--seed=7]
 *
 * Exits non-zero on any answer out of its window, any non-200, or a cache over its bound.
 */
import { runChurn } from '../test/support/hardening/churn.ts';
import { printTable, writeResults } from './lib/report.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return raw === undefined ? fallback : Number(raw);
};

const options = {
  transitions: arg('transitions', 1000),
  versions: 6,
  aliasTtlMs: arg('ttl', 100),
  hidden: 65_536,
  cachedModels: 2,
  clients: 2,
  seed: arg('seed', 7),
};

const report = await runChurn(options);
const MiB = 1024 * 1024;
printTable(
  `churn: ${report.transitions} alias changes over ${options.versions} versions in ${(report.durationMs / 1000).toFixed(1)} s, TTL ${options.aliasTtlMs} ms`,
  ['figure', 'value'],
  [
    ['requests', report.requests],
    ['requests/s', report.requests / (report.durationMs / 1000)],
    ['statuses', JSON.stringify(report.statuses)],
    ['served by', JSON.stringify(report.byVariant)],
    ['out of their window', report.outOfWindow.length],
    ['longest alias read (ms)', report.maxAliasReadMs],
    ['model size (MiB)', report.modelBytes / MiB],
    ['session cache bound (MiB)', report.sessionCacheBytes / MiB],
    ['session loads', report.loads],
    ['session evictions', report.evictions],
    ['live sessions: max / at end', `${report.maxLiveSessions} / ${report.liveSessionsAtEnd}`],
    ['RSS after warm-up (MiB)', report.rss.warmMb],
    ['RSS at end (MiB)', report.rss.endMb],
    ['RSS peak (MiB)', report.rss.peakMb],
    ['RSS growth (MiB)', report.rss.growthMb],
    ['  of which JS heap (MiB)', report.rss.heapGrowthMb],
    ['RSS growth (%)', report.rss.growthPct],
  ],
);
for (const miss of report.outOfWindow.slice(0, 10)) {
  console.log(`✗ served v${miss.version} as ${miss.variant}; allowed ${miss.allowed.join(', ')}`);
}
await writeResults('churn', { options, ...report, outOfWindow: report.outOfWindow.slice(0, 100) });
const failed =
  report.outOfWindow.length > 0 ||
  Object.keys(report.statuses).some((s) => s !== '200') ||
  report.maxLiveSessions > options.cachedModels ||
  report.loads - report.evictions !== report.liveSessionsAtEnd;
process.exitCode = failed ? 1 : 0;
