import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalApi, startLocalApi } from '../../local/http/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';
import { registerVersion, setAliases } from '../support/registry.ts';

const WORKERS = 4;
const MODELS = 50;
const REQUESTS = 100;

const infer = (api: LocalApi, model: string) =>
  fetch(`${api.url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    }),
  });

const ready = async (api: LocalApi, model: string): Promise<number> => {
  const res = await fetch(`${api.url}/v2/models/${model}/ready`);
  await res.arrayBuffer();
  return res.status;
};

/** `count` calls of `call`, `concurrency` at a time (so every handler instance takes some) */
async function spread<T>(count: number, concurrency: number, call: () => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < count) {
        started += 1;
        results.push(await call());
      }
    }),
  );
  return results;
}

describe('a model that just registered, across handler instances', () => {
  let t: TestS3;
  let api: LocalApi;
  let registry: Registry;

  beforeAll(async () => {
    t = await startTestS3();
    registry = new Registry(t.store);
    // A long alias TTL keeps a stale view for the whole test: on a loaded machine the default 5 s
    // may lapse before the requests that would show it.
    api = await startLocalApi({
      port: 0,
      workers: WORKERS,
      queueLimit: 10_000,
      env: { ...s3Env(t.s3), MAAS_ALIAS_TTL_MS: '60000' },
      onOutput: () => {},
    });
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it('is served by every instance once any instance says it is ready', async () => {
    const models = Array.from({ length: MODELS }, (_, i) => `fresh-${i}`);
    // Ingest's order: the version is committed, then aliases.json names it. An instance asked in
    // between (one per model: the pool hands requests to idle instances in turn) learns "no
    // production version" ...
    await Promise.all(models.map((m, i) => registerVersion(registry, m, tinyModel({ seed: i }))));
    for (const m of models) expect(await ready(api, m)).toBe(404);
    // ... then production is set, and each model is polled until ready, then called.
    await Promise.all(models.map((m) => setAliases(registry, m, { production: 1 })));
    const statuses = new Map<number, number>();
    await Promise.all(
      models.map(async (m) => {
        for (let polls = 0; (await ready(api, m)) !== 200; polls++) {
          expect(polls).toBeLessThan(500);
          await new Promise((r) => setTimeout(r, 20));
        }
        const answers = await spread(REQUESTS, WORKERS, async () => {
          const res = await infer(api, m);
          await res.arrayBuffer();
          return res.status;
        });
        for (const status of answers) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }),
    );
    expect(Object.fromEntries(statuses)).toEqual({ 200: MODELS * REQUESTS });
  }, 240_000);
});
