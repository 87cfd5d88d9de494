import { readdir, writeFile } from 'node:fs/promises';
import type * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel, parseModel } from '../../src/onnx/index.ts';
import { toHttpResponse } from '../../src/protocol/index.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import {
  createSession,
  ModelRuntime,
  type ModelRuntimeOptions,
  ModelUnavailableError,
  type SessionFactory,
} from '../../src/runtime/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { overwrite, registerVersion, setAliases } from '../support/registry.ts';
import {
  addModel,
  expectedOutput,
  outputOf,
  RecordingStore,
  tempDir,
} from '../support/runtime-fixtures.ts';

let s3: TestS3;
let registry: Registry;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await s3.cleanup();
});

/** a runtime over the shared local S3 with its own disk cache, closed after the file */
async function runtimeFor(
  overrides: Partial<ModelRuntimeOptions> = {},
): Promise<{ runtime: ModelRuntime; store: RecordingStore; tmp: string }> {
  const tmp = await tempDir();
  const store = new RecordingStore(overrides.store ?? s3.store);
  const runtime = new ModelRuntime({
    registry: new Registry(store),
    store,
    tmpCacheDir: tmp.dir,
    intraOpThreads: 1,
    ...overrides,
  });
  cleanups.push(async () => {
    await runtime.close();
    await tmp.remove();
  });
  return { runtime, store, tmp: tmp.dir };
}

/** registers one version per offset and makes the first production */
async function seed(name: string, offsets: number[]): Promise<void> {
  for (const offset of offsets) await registerVersion(registry, name, addModel(offset));
  await setAliases(registry, name, { production: 1 });
}

/** real sessions, with a record of which were created and released */
const trackingSessions = (): {
  createSession: SessionFactory;
  created: number;
  released: number;
} => {
  const tracker = {
    created: 0,
    released: 0,
    createSession: (async (bytes, options) => {
      const session = await createSession(bytes, options);
      tracker.created += 1;
      const release = session.release.bind(session);
      session.release = async () => {
        tracker.released += 1;
        await release();
      };
      return session;
    }) satisfies SessionFactory,
  };
  return tracker;
};

describe('ModelRuntime', () => {
  it('cold-loads the production version from S3 and runs it', async () => {
    await seed('cold', [10, 20]);
    const { runtime } = await runtimeFor();

    const loaded = await runtime.acquire('cold');

    expect(loaded).toMatchObject({
      model: 'cold',
      version: 1,
      variant: 'production',
      served: 'fp32',
    });
    expect(loaded.load?.source).toBe('s3');
    expect(loaded.inputs.map((i) => i.name)).toEqual(['x']);
    expect(await outputOf(loaded)).toEqual(expectedOutput(10));
    const warm = await runtime.acquire('cold');
    expect(warm.load).toBeUndefined();
  });

  it('shares one load among concurrent acquires of a cold model', async () => {
    await seed('flight', [3]);
    const { runtime, store } = await runtimeFor();

    const handles = await Promise.all(Array.from({ length: 10 }, () => runtime.acquire('flight')));

    expect(store.callsFor(keys.variant('flight', 1, 'fp32'), 'get')).toHaveLength(1);
    expect(store.callsFor(keys.manifest('flight', 1), 'get')).toHaveLength(1);
    expect(handles.every((h) => h.version === 1)).toBe(true);
    expect(await outputOf(handles[9]!)).toEqual(expectedOutput(3));
  });

  it('serves pinned versions and reports unknown models and versions as not found', async () => {
    await seed('pinned', [1, 2]);
    const { runtime } = await runtimeFor();

    const pinned = await runtime.acquire('pinned', 2);

    expect(pinned).toMatchObject({ version: 2, variant: 'pinned' });
    expect(await outputOf(pinned)).toEqual(expectedOutput(2));
    await expect(runtime.acquire('pinned', 9)).rejects.toMatchObject({ code: 'VersionNotFound' });
    await expect(runtime.acquire('no-such-model')).rejects.toMatchObject({ code: 'ModelNotFound' });
    await expect(runtime.acquire('Bad Name!')).rejects.toMatchObject({ code: 'InvalidModelName' });
  });

  it('answers an unpinned request for a model without production with a clear not-found', async () => {
    await registerVersion(registry, 'unpromoted', addModel(0));
    const { runtime } = await runtimeFor();

    const err = await runtime.acquire('unpromoted').catch((e: unknown) => e);

    expect(err).toMatchObject({ code: 'ModelNotFound' });
    expect((err as Error).message).toContain('/v2/models/unpromoted/versions/{version}/infer');
    expect(toHttpResponse(err).status).toBe(404);
    expect((await runtime.acquire('unpromoted', 1)).variant).toBe('pinned');
  });

  it('routes to the candidate with the probability of its weight', async () => {
    await seed('canary', [100, 200]);
    await setAliases(registry, 'canary', {
      production: 1,
      candidate: { version: 2, weight: 0.25, bakeUntil: new Date(0).toISOString() },
    });
    const draws = [0.1, 0.3, 0.24, 0.9, 0.25];
    const { runtime } = await runtimeFor({ random: () => draws.shift() ?? 1 });

    const routed = [];
    for (let i = 0; i < 5; i++) routed.push(await runtime.acquire('canary'));

    expect(routed.map((r) => [r.version, r.variant])).toEqual([
      [2, 'candidate'],
      [1, 'production'],
      [2, 'candidate'],
      [1, 'production'],
      [1, 'production'],
    ]);
    expect(await outputOf(routed[0]!)).toEqual(expectedOutput(200));
  });

  it('picks up a new production after the alias TTL with a conditional GET', async () => {
    await seed('ttl', [1, 2]);
    let clock = 0;
    const { runtime, store } = await runtimeFor({ aliasTtlMs: 5_000, now: () => clock });
    const aliasesKey = keys.aliases('ttl');
    expect((await runtime.acquire('ttl')).version).toBe(1);

    clock = 6_000;
    expect((await runtime.acquire('ttl')).version).toBe(1);
    await setAliases(registry, 'ttl', { production: 2 });
    clock = 9_000;
    const withinTtl = await runtime.acquire('ttl');
    clock = 12_000;
    const afterTtl = await runtime.acquire('ttl');

    expect(withinTtl.version).toBe(1);
    expect(afterTtl.version).toBe(2);
    expect(await outputOf(afterTtl)).toEqual(expectedOutput(2));
    const conditional = store.callsFor(aliasesKey, 'get').filter((c) => c.conditional);
    expect(conditional.map((c) => c.notModified)).toEqual([true, false]);
  });

  it('releases evicted sessions, and a handle held across eviction still runs', async () => {
    await seed('lru', [1, 2, 3]);
    const sessions = trackingSessions();
    const oneModel = addModel(1).byteLength;
    const { runtime } = await runtimeFor({
      sessionCacheBytes: oneModel * 2,
      createSession: sessions.createSession,
    });

    const first = await runtime.acquire('lru', 1);
    await runtime.acquire('lru', 2);
    await runtime.acquire('lru', 1);
    await runtime.acquire('lru', 3);

    expect(runtime.loadedModels()).toEqual(['lru@1', 'lru@3']);
    expect(sessions).toMatchObject({ created: 3, released: 1 });
    await runtime.acquire('lru', 2);
    expect(runtime.loadedModels()).toEqual(['lru@3', 'lru@2']);
    expect(sessions.released).toBe(2);
    expect(await outputOf(first)).toEqual(expectedOutput(1));
    expect(sessions.created).toBe(5);
  });

  it('releases an evicted session only after its in-flight run finishes', async () => {
    await seed('inflight', [1, 2]);
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const sessions = trackingSessions();
    const gated: SessionFactory = async (bytes, options) => {
      const session = await sessions.createSession(bytes, options);
      const run = session.run.bind(session) as (
        feeds: ort.InferenceSession.FeedsType,
        fetches: string[],
      ) => Promise<ort.InferenceSession.ReturnType>;
      session.run = (async (feeds: ort.InferenceSession.FeedsType, fetches: string[]) => {
        await gate;
        return run(feeds, fetches);
      }) as ort.InferenceSession['run'];
      return session;
    };
    const { runtime } = await runtimeFor({
      sessionCacheBytes: addModel(1).byteLength,
      createSession: gated,
    });

    const first = await runtime.acquire('inflight', 1);
    const running = outputOf(first);
    await runtime.acquire('inflight', 2);
    const releasedDuringRun = sessions.released;
    open();

    expect(await running).toEqual(expectedOutput(1));
    expect(releasedDuringRun).toBe(0);
    expect(sessions.released).toBe(1);
    expect(runtime.loadedModels()).toEqual(['inflight@2']);
  });

  it('loads from the disk cache without reading S3, and re-verifies what it reads there', async () => {
    await seed('disk', [7]);
    const variantKey = keys.variant('disk', 1, 'fp32');
    const first = await runtimeFor();
    await first.runtime.acquire('disk');
    await first.runtime.settled();
    const second = await runtimeFor({ tmpCacheDir: first.tmp });

    const loaded = await second.runtime.acquire('disk');

    expect(loaded.load?.source).toBe('tmp');
    expect(second.store.callsFor(variantKey)).toHaveLength(0);
    expect(await outputOf(loaded)).toEqual(expectedOutput(7));

    const [cached] = await readdir(first.tmp);
    await writeFile(`${first.tmp}/${cached}`, 'torn write');
    const third = await runtimeFor({ tmpCacheDir: first.tmp });
    const reloaded = await third.runtime.acquire('disk');
    expect(reloaded.load?.source).toBe('s3');
    expect(await outputOf(reloaded)).toEqual(expectedOutput(7));
  });

  it('refuses bytes whose sha256 differs from the manifest: 503-mapped error and no session', async () => {
    await seed('tampered', [5]);
    await overwrite(s3.store, keys.variant('tampered', 1, 'fp32'), addModel(6));
    const sessions = trackingSessions();
    const { runtime } = await runtimeFor({ createSession: sessions.createSession });

    const err = await runtime.acquire('tampered').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ModelUnavailableError);
    expect(err).toMatchObject({
      code: 'IntegrityError',
      details: { model: 'tampered', version: 1, variant: 'production', retryAfterSeconds: 2 },
    });
    expect((err as Error).message).toContain(keys.variant('tampered', 1, 'fp32'));
    expect(toHttpResponse(err)).toMatchObject({ status: 503, headers: { 'retry-after': '2' } });
    expect(sessions.created).toBe(0);
    expect(runtime.loadedModels()).toEqual([]);
  });

  it('attributes a verified model that onnxruntime cannot load to the version and route that asked', async () => {
    await seed('unloadable', [1]);
    const broken = parseModel(addModel(2));
    const add = broken.graph?.node[0];
    if (add === undefined) throw new Error('the fixture model has no node');
    add.input[1] = 'no-such-tensor';
    await registerVersion(registry, 'unloadable', encodeModel(broken));
    await setAliases(registry, 'unloadable', {
      production: 1,
      candidate: { version: 2, weight: 1, bakeUntil: new Date(0).toISOString() },
    });
    const { runtime } = await runtimeFor({ random: () => 0 });

    const err = await runtime.acquire('unloadable').catch((e: unknown) => e);

    expect(err).toMatchObject({
      code: 'ModelLoadFailed',
      details: { model: 'unloadable', version: 2, variant: 'candidate' },
    });
    expect(toHttpResponse(err).status).toBe(500);
    expect(await outputOf(await runtime.acquire('unloadable', 1))).toEqual(expectedOutput(1));
  });

  it('reads a large model with parallel ranged GETs and verifies it as the parts arrive', async () => {
    const bytes = addModel(9, 4096);
    await registerVersion(registry, 'ranged', bytes);
    await registerVersion(registry, 'ranged', addModel(8, 4096));
    const third = addModel(7, 4096);
    await registerVersion(registry, 'ranged', third);
    await setAliases(registry, 'ranged', { production: 1 });
    const ranged = { rangedGetMinBytes: 1024, rangedGetPartBytes: 1000, rangedGetConcurrency: 4 };
    const { runtime, store } = await runtimeFor(ranged);

    const loaded = await runtime.acquire('ranged');

    const parts = store.callsFor(keys.variant('ranged', 1, 'fp32'), 'get');
    expect(parts.map((c) => c.rangeStart).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: Math.ceil(bytes.byteLength / 1000) }, (_, i) => i * 1000),
    );
    expect(store.callsFor(keys.variant('ranged', 1, 'fp32'), 'head')).toHaveLength(0);
    expect(await outputOf(loaded)).toEqual(expectedOutput(9));

    await overwrite(
      s3.store,
      keys.variant('ranged', 2, 'fp32'),
      bytes.subarray(0, bytes.byteLength - 10),
    );
    await expect(runtime.acquire('ranged', 2)).rejects.toMatchObject({ code: 'IntegrityError' });
    // Bytes appended after the manifest's length: every ranged byte matches, the size does not.
    const longer = new Uint8Array(third.byteLength + 10);
    longer.set(third);
    await overwrite(s3.store, keys.variant('ranged', 3, 'fp32'), longer);
    await expect(runtime.acquire('ranged', 3)).rejects.toMatchObject({
      code: 'IntegrityError',
      details: { expectedBytes: third.byteLength, actualBytes: longer.byteLength },
    });
    expect(runtime.loadedModels()).toEqual(['ranged@1']);
  });

  it('describes a model by its production version, or the version asked for', async () => {
    await seed('described', [1, 2]);
    const { runtime } = await runtimeFor();

    const byProduction = await runtime.describe('described');
    const byVersion = await runtime.describe('described', 2);

    expect(byProduction).toMatchObject({ name: 'described', versions: [1, 2], version: 1 });
    expect(byProduction.manifest.inputs[0]).toMatchObject({ name: 'x', datatype: 'FP32' });
    expect(byVersion.version).toBe(2);
    await expect(runtime.describe('described', 3)).rejects.toMatchObject({
      code: 'VersionNotFound',
    });
    await expect(runtime.describe('missing')).rejects.toMatchObject({ code: 'ModelNotFound' });
    await registry.recordRejection({
      model: 'only-rejected',
      sourceKey: 'incoming/only-rejected/bad.onnx',
      etag: 'e',
      code: 'NotOnnx',
      reason: 'not an ONNX model',
    });
    const listing = await runtime.listModels();
    expect(listing.find((m) => m.name === 'described')).toEqual({
      name: 'described',
      production: 1,
    });
    expect(listing.map((m) => m.name)).not.toContain('only-rejected');
  });
});

describe('ModelRuntime when the model store goes down', () => {
  it('keeps serving cached models and answers cold loads with a 503-mapped error', async () => {
    const down = await startTestS3();
    const downRegistry = new Registry(down.store);
    for (const offset of [1, 2]) await registerVersion(downRegistry, 'outage', addModel(offset));
    await setAliases(downRegistry, 'outage', { production: 1 });
    let clock = 0;
    const { runtime } = await runtimeFor({ store: down.store, now: () => clock });
    await runtime.acquire('outage');

    await down.cleanup();
    clock = 60_000;
    const cached = await runtime.acquire('outage');
    const cold = await runtime.acquire('outage', 2).catch((e: unknown) => e);

    expect(cached).toMatchObject({ version: 1, variant: 'production' });
    expect(await outputOf(cached)).toEqual(expectedOutput(1));
    expect(cold).toBeInstanceOf(ModelUnavailableError);
    expect(cold).toMatchObject({
      code: 'ModelUnavailable',
      details: { model: 'outage', version: 2, variant: 'pinned', retryAfterSeconds: 2 },
    });
    expect((cold as Error).message).toContain('unreachable');
    const response = toHttpResponse(cold);
    expect(response).toMatchObject({ status: 503, headers: { 'retry-after': '2' } });
    expect(JSON.parse(String(response.body)).error).toContain('model outage version 2');
  });
});
