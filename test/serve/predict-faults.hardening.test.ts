import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../../src/protocol/index.ts';
import { ModelRuntime } from '../../src/runtime/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { type Fault, keyMatch } from '../support/fault-proxy.ts';
import { violations } from '../support/fuzz/oracle.ts';
import { auditRegistry } from '../support/hardening/audit.ts';
import { type FaultyStorage, startFaultyStorage } from '../support/hardening/faulty-storage.ts';
import { tinyRequestBody } from '../support/hardening/models.ts';
import { tinyModel } from '../support/models.ts';
import { registerVersion, setAliases } from '../support/registry.ts';

const ALIAS_TTL_MS = 50;
const RETRY_AFTER = 2;
/** below predict's Lambda time-out (15 s), above its S3 reader's answer time-out (10 s) */
const STALL_TEST_TIMEOUT_MS = 14_000;

let storage: FaultyStorage;
let tmp: string;
let runtime: ModelRuntime;
let app: PredictApp;
let coldModels = 0;

const utf8 = new TextEncoder();
const call = (method: string, path: string, body?: string): Promise<HttpResponse> =>
  app({
    method,
    path,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    query: {},
    body: body === undefined ? undefined : utf8.encode(body),
    requestId: `faults-${path}`,
  });
const infer = (path: string) => call('POST', path, tinyRequestBody());
const text = (res: HttpResponse) =>
  typeof res.body === 'string' ? res.body : Buffer.from(res.body).toString();

/** A model registered but never requested yet: its next request is a cold load from the store. */
const newColdModel = async (): Promise<string> => {
  const name = `cold-${++coldModels}`;
  await registerVersion(storage.direct, name, tinyModel({ seed: 1000 + coldModels }));
  await setAliases(storage.direct, name, { production: 1 });
  return name;
};

beforeAll(async () => {
  storage = await startFaultyStorage();
  tmp = await mkdtemp(join(tmpdir(), 'maas-faults-'));
  await registerVersion(storage.direct, 'warm', tinyModel({ seed: 1 }));
  await setAliases(storage.direct, 'warm', { production: 1 });
  runtime = new ModelRuntime({
    // what predict reads through (src/runtime/from-env.ts)
    registry: storage.readRegistry,
    store: storage.reader,
    aliasTtlMs: ALIAS_TTL_MS,
    // every cold load reads the store: no disk cache to hide a fault behind
    tmpCacheDir: tmp,
    tmpCacheBytes: 0,
    intraOpThreads: 1,
    retryAfterSeconds: RETRY_AFTER,
  });
  app = createPredictApp({ provider: runtime });
  expect((await infer('/v2/models/warm/infer')).status).toBe(200);
});

afterAll(async () => {
  await runtime?.close();
  await storage?.close();
  await rm(tmp, { recursive: true, force: true });
});

const bucket = () => storage.s3.s3.bucket;

/** Each outage, and whether a request pinned to a version needs what it breaks. */
const outages: [string, () => Fault, { pinnedFails: boolean }][] = [
  ['every connection dropped', () => ({ kind: 'drop' }), { pinnedFails: true }],
  [
    '500 InternalError on every call',
    () => ({ kind: 'status', status: 500 }),
    { pinnedFails: true },
  ],
  ['503 SlowDown on every call', () => ({ kind: 'status', status: 503 }), { pinnedFails: true }],
  [
    'model bytes cut off mid-body',
    () => ({ kind: 'truncate', bytes: 64, match: keyMatch(bucket(), /\/model\.onnx$/) }),
    { pinnedFails: true },
  ],
  [
    'manifests cut off mid-body',
    () => ({ kind: 'truncate', bytes: 10, match: keyMatch(bucket(), /\/manifest\.json$/) }),
    { pinnedFails: true },
  ],
  [
    'aliases.json cut off mid-body',
    () => ({ kind: 'truncate', bytes: 5, match: keyMatch(bucket(), /\/aliases\.json$/) }),
    // a pinned request names its version: it needs no aliases and serves
    { pinnedFails: false },
  ],
];

describe('predict while the model store fails', () => {
  it.each(outages)(
    '%s: cold models answer 503 + Retry-After, warm ones keep serving, all recover by themselves',
    async (_name, fault, { pinnedFails }) => {
      const cold = await newColdModel();
      storage.proxy.set(fault());
      // past the alias TTL: the warm model must re-check its aliases against the failing store
      await sleep(ALIAS_TTL_MS * 2);
      const during = {
        cold: await infer(`/v2/models/${cold}/infer`),
        pinned: await infer(`/v2/models/${cold}/versions/1/infer`),
        warm: await infer('/v2/models/warm/infer'),
        list: await call('GET', '/v2/models'),
        metadata: await call('GET', `/v2/models/${cold}`),
        ready: await call('GET', '/v2/health/ready'),
      };
      storage.proxy.clear();
      for (const [what, res] of Object.entries(during)) {
        expect(violations(res, { storageDown: true }), `${what}: ${text(res)}`).toEqual([]);
        expect([200, 503], `${what}: ${text(res)}`).toContain(res.status);
      }
      for (const res of pinnedFails ? [during.cold, during.pinned] : [during.cold]) {
        expect(res.status, text(res)).toBe(503);
        expect(res.headers['retry-after']).toBe(String(RETRY_AFTER));
        expect(JSON.parse(text(res)).error).toMatch(/storage|missing|cannot be loaded/);
      }
      if (!pinnedFails) expect(during.pinned.status, text(during.pinned)).toBe(200);
      expect(during.warm.status, text(during.warm)).toBe(200);
      expect(during.warm.headers['x-maas-model-version']).toBe('1');

      const after = await infer(`/v2/models/${cold}/infer`);
      expect(after.status, text(after)).toBe(200);
      expect(after.headers['x-maas-model-version']).toBe('1');
      expect((await call('GET', '/v2/models')).status).toBe(200);
    },
  );

  it(
    'answers a stalled store with 503 + Retry-After while the invocation lasts, not after the S3 time-outs',
    async () => {
      // Found by attack: a store that accepts connections and never answers held a cold request
      // for 3 attempts × the 30 s idle-socket time-out, past predict's 15 s Lambda time-out, so
      // the client got API Gateway's bare 5xx instead of a JSON 503.
      const cold = await newColdModel();
      storage.proxy.set({ kind: 'delay', ms: 120_000 });
      try {
        const res = await infer(`/v2/models/${cold}/infer`);
        expect(res.status, text(res)).toBe(503);
        expect(res.headers['retry-after']).toBe(String(RETRY_AFTER));
        expect(JSON.parse(text(res)).error).toMatch(/storage is unreachable/);
      } finally {
        storage.proxy.clear();
      }
    },
    STALL_TEST_TIMEOUT_MS,
  );

  it('serves through a slow store, only later', async () => {
    const cold = await newColdModel();
    storage.proxy.set({ kind: 'delay', ms: 150 });
    const res = await infer(`/v2/models/${cold}/infer`);
    storage.proxy.clear();
    expect(res.status, text(res)).toBe(200);
  });

  it('answers 200 or 503, never anything else, while a flaky store drops 40% of its calls', async () => {
    const models = await Promise.all(Array.from({ length: 8 }, newColdModel));
    storage.proxy.set({ kind: 'drop', rate: 0.4 }, { kind: 'status', status: 500, rate: 0.2 });
    const during = [];
    for (const name of models) during.push(await infer(`/v2/models/${name}/infer`));
    storage.proxy.clear();
    for (const res of during) {
      expect(violations(res, { storageDown: true }), text(res)).toEqual([]);
      expect([200, 503]).toContain(res.status);
    }
    for (const name of models) {
      const res = await infer(`/v2/models/${name}/infer`);
      expect(res.status, text(res)).toBe(200);
    }
  });

  it('leaves the registry whole: every alias names a committed version, every object verifies', async () => {
    const audit = await auditRegistry(storage.direct);
    expect(audit.problems).toEqual([]);
    expect(audit.versions).toBe(coldModels + 1);
  });
});
