import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleBackend } from '../../../cli/console/backend.ts';
import { LocalStoreMetrics } from '../../../cli/console/metrics.ts';
import { LocalMetricsStore } from '../../../local/guard/metrics-store.ts';
import { alarmDefinitions } from '../../../src/guard/index.ts';
import { keys, Registry } from '../../../src/registry/index.ts';
import type { ObjectStore } from '../../../src/storage/index.ts';
import { modelWith } from '../../support/guard-fixtures.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { overwrite } from '../../support/registry.ts';

/**
 * The models list refreshes every few seconds and reads each model's newest history record. A
 * model with a long history must not cost a full listing of it on every refresh.
 */

const RECORDS = 1_100;
/** records an hour apart: a month and a half of history */
const HOUR = 3_600_000;
let s3: TestS3;
let listedHistoryKeys = 0;
let now = Date.now();
let backend: ConsoleBackend;

beforeAll(async () => {
  s3 = await startTestS3();
  const registry = new Registry(s3.store);
  await modelWith(registry, 'longlived', 1, { production: 1 });
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  const record = (i: number) =>
    JSON.stringify({
      model: 'longlived',
      event: 'candidate',
      version: 1,
      at: new Date(t0 + i * HOUR).toISOString(),
      actor: 'test',
      reason: `record ${i}`,
    });
  for (let i = 0; i < RECORDS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, RECORDS - i) }, (_, j) =>
        overwrite(
          s3.store,
          keys.historyRecord('longlived', t0 + (i + j) * HOUR, `r${i + j}`),
          record(i + j),
        ),
      ),
    );
  }
  const counting = new Proxy(s3.store, {
    get(target, prop) {
      if (prop === 'list') {
        return async (...args: Parameters<ObjectStore['list']>) => {
          const out = await target.list(...args);
          if (args[0] === keys.historyPrefix('longlived')) listedHistoryKeys += out.keys.length;
          return out;
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const definitions = alarmDefinitions({ timeScale: 1 / 60, overrides: {} });
  backend = new ConsoleBackend({
    target: {
      kind: 'local',
      s3Endpoint: s3.s3.endpoint,
      bucket: s3.s3.bucket,
      region: 'us-east-1',
      apiUrl: 'http://127.0.0.1:9',
    },
    registry: new Registry(counting),
    client: s3.client,
    metrics: new LocalStoreMetrics(new LocalMetricsStore(60_000), definitions),
    clock: () => now,
  });
}, 120_000);

afterAll(async () => {
  await s3?.cleanup();
});

const row = async () => (await backend.models()).models.find((m) => m.name === 'longlived');

describe('console history listing', () => {
  it('lists a long history once, then only what is new, and still sees every new record', async () => {
    expect((await row())?.status).toBe('healthy');
    expect(listedHistoryKeys).toBeGreaterThanOrEqual(RECORDS);

    listedHistoryKeys = 0;
    expect((await row())?.status).toBe('healthy');
    expect(listedHistoryKeys).toBeLessThan(10);

    // a rollback recorded now is the model's status at the next refresh
    await overwrite(
      s3.store,
      keys.historyRecord('longlived', now, 'rb'),
      JSON.stringify({
        model: 'longlived',
        event: 'rolled-back',
        version: 1,
        at: new Date(now).toISOString(),
        actor: 'guard',
        reason: 'model-errors in ALARM',
      }),
    );
    listedHistoryKeys = 0;
    expect((await row())?.status).toBe('rolled back');
    expect(listedHistoryKeys).toBeLessThan(10);

    // a record stamped a minute before the newest, written after it (a lost race), still shows
    await overwrite(
      s3.store,
      keys.historyRecord('longlived', now - 60_000, 'late'),
      JSON.stringify({
        model: 'longlived',
        event: 'promoted',
        version: 1,
        at: new Date(now - 60_000).toISOString(),
        actor: 'cli',
        reason: 'late',
      }),
    );
    const page = await backend.history('longlived', undefined, 3);
    expect(page.total).toBe(RECORDS + 2);
    expect(page.entries.slice(0, 2).map((e) => e.record?.reason)).toEqual([
      'model-errors in ALARM',
      'late',
    ]);

    // once a minute everything is listed again
    now += 61_000;
    listedHistoryKeys = 0;
    await row();
    expect(listedHistoryKeys).toBeGreaterThanOrEqual(RECORDS);
  });
});
