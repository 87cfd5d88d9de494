import { expect, it } from 'vitest';
import { runChurn } from '../support/hardening/churn.ts';

/**
 * The reduced run of `bench/churn.ts`: 100 alias changes instead of 1,000. RSS growth is bounded
 * loosely here (a leak of a session per change would pass 64 MiB: 100 × 0.5 MiB of weights plus
 * onnxruntime's per-session overhead); the benchmark reports the measured figure.
 */
it('serves every request during 100 promotions and rollbacks from a version that held its role, with sessions released', async () => {
  const report = await runChurn({
    transitions: 100,
    versions: 5,
    aliasTtlMs: 50,
    hidden: 16_384,
    cachedModels: 2,
    clients: 1,
    seed: 11,
  });
  expect(report.outOfWindow).toEqual([]);
  expect(Object.keys(report.statuses)).toEqual(['200']);
  expect(report.byVariant.production).toBeGreaterThan(0);
  expect(report.byVariant.candidate).toBeGreaterThan(0);
  expect(report.evictions).toBeGreaterThan(0);
  expect(report.maxLiveSessions).toBeLessThanOrEqual(2);
  expect(report.loads - report.evictions).toBe(report.liveSessionsAtEnd);
  expect(report.rss.growthMb).toBeLessThan(64);
});
