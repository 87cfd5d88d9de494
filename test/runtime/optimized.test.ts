import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCnnModel, cnnImages, SMALL_CNN } from '../../models/cnn.ts';
import { preOptimize } from '../../src/ingest/preoptimize.ts';
import { keys, type Manifest, Registry } from '../../src/registry/index.ts';
import {
  createSession,
  ModelRuntime,
  runtimeVersion,
  type SessionFactory,
  type SessionSettings,
} from '../../src/runtime/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { mlpModel } from '../support/quantize-fixtures.ts';
import { overwrite, registerVersion, setAliases } from '../support/registry.ts';
import { RecordingStore, tempDir } from '../support/runtime-fixtures.ts';

const plain = buildCnnModel(SMALL_CNN);
const image = () =>
  new ort.Tensor('float32', cnnImages(SMALL_CNN.size, 1)[0]!, [
    1,
    3,
    SMALL_CNN.size,
    SMALL_CNN.size,
  ]);

/** What onnxruntime writes for `plain` at the extended level, the way ingest asks for it. */
const optimizedBytes = async (settings: SessionSettings = {}): Promise<Uint8Array> => {
  const dir = await mkdtemp(join(tmpdir(), 'maas-opt-test-'));
  try {
    const path = join(dir, 'm.onnx');
    const s = await createSession(plain, {
      ...settings,
      optimizationLevel: 'extended',
      optimizedModelFilePath: path,
    });
    await s.release();
    return new Uint8Array(await readFile(path));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

let s3: TestS3;
let registry: Registry;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await s3.cleanup();
});

/** registers `plain` as version 1 with a pre-optimized graph whose fields `patch` may change */
const register = async (
  name: string,
  bytes: Uint8Array,
  patch: Partial<Manifest['optimized']> = {},
) => {
  const m = await registerVersion(registry, name, plain);
  const info = await registry.putOptimized(name, m.version, 'fp32', bytes);
  // registerVersion committed a manifest without it: write the version again as ingest would
  const manifest: Manifest = {
    ...m,
    optimized: {
      ...info,
      of: 'fp32',
      runtime: runtimeVersion(),
      level: 'extended',
      loadLevel: 'disabled',
      createMs: { original: 10, optimized: 5 },
      ...patch,
    },
  };
  await overwrite(s3.store, keys.manifest(name, m.version), JSON.stringify(manifest));
  await setAliases(registry, name, { production: m.version });
};

const runtimeWith = async () => {
  const tmp = await tempDir();
  const store = new RecordingStore(s3.store);
  const levels: (SessionSettings['optimizationLevel'] | undefined)[] = [];
  const tracking: SessionFactory = (bytes, settings) => {
    levels.push(settings?.optimizationLevel);
    return createSession(bytes, settings);
  };
  const runtime = new ModelRuntime({
    registry: new Registry(store),
    store,
    tmpCacheDir: tmp.dir,
    intraOpThreads: 1,
    createSession: tracking,
  });
  cleanups.push(async () => {
    await runtime.close();
    await tmp.remove();
  });
  return { runtime, store, levels };
};

const logits = async (runtime: ModelRuntime, name: string) => {
  const handle = await runtime.acquire(name);
  const out = await handle.run({ x: image() }, ['logits']);
  return Array.from(out.logits!.data as Float32Array);
};

const reference = async () => {
  const s = await createSession(plain);
  const out = Array.from((await s.run({ x: image() })).logits!.data as Float32Array);
  await s.release();
  return out;
};

describe('predict and the pre-optimized graph', () => {
  it('loads the stored optimized graph at its load level and answers as the plain model', async () => {
    await register('opt', await optimizedBytes());
    const { runtime, store, levels } = await runtimeWith();
    const got = await logits(runtime, 'opt');
    const want = await reference();
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(want[i]!, 4);
    expect(store.callsFor(keys.optimized('opt', 1, 'fp32'), 'get').length).toBeGreaterThan(0);
    expect(store.callsFor(keys.variant('opt', 1, 'fp32'), 'get')).toEqual([]);
    expect(levels).toEqual(['disabled']);
  });

  it('loads the plain variant when another onnxruntime version wrote the optimized graph', async () => {
    await register('opt-old', await optimizedBytes(), { runtime: '0.0.1' });
    const { runtime, store, levels } = await runtimeWith();
    await logits(runtime, 'opt-old');
    expect(store.callsFor(keys.optimized('opt-old', 1, 'fp32'), 'get')).toEqual([]);
    expect(levels).toEqual([undefined]);
  });

  it('falls back to the plain variant when the optimized graph does not load', async () => {
    await register('opt-bad', new TextEncoder().encode('not a model'));
    const { runtime, store } = await runtimeWith();
    const got = await logits(runtime, 'opt-bad');
    expect(got).toHaveLength(SMALL_CNN.classes);
    expect(store.callsFor(keys.variant('opt-bad', 1, 'fp32'), 'get').length).toBeGreaterThan(0);
  });
});

describe('ingest’s pre-optimization', () => {
  it('writes the same graph whether or not the writing session pre-packs its weights', async () => {
    const packed = await optimizedBytes();
    const unpacked = await optimizedBytes({ prepack: false });
    expect(unpacked.byteLength).toBeGreaterThan(0);
    expect(Buffer.compare(Buffer.from(unpacked), Buffer.from(packed))).toBe(0);
  });

  it('reads back the graph of a model whose weights are all small, written whole', async () => {
    const tiny = mlpModel({ widths: [4, 8, 3] });
    const x = new ort.Tensor('float32', new Float32Array([0.1, -0.2, 0.3, 0.4]), [1, 4]);
    const result = await preOptimize(tiny, { x }, { intraOpThreads: 1 });
    if ('skipped' in result) expect(result.skipped).toMatch(/creates faster/);
    else expect(result.bytes.byteLength).toBeGreaterThan(0);
  });

  it('either keeps a graph that answers the same, or says why it kept none', async () => {
    const result = await preOptimize(plain, { x: image() }, { intraOpThreads: 1 });
    if ('skipped' in result) {
      expect(result.skipped).toMatch(/creates faster|answers differently|failed/);
      return;
    }
    expect(result.runtime).toBe(runtimeVersion());
    expect(result.createMs.optimized).toBeLessThanOrEqual(result.createMs.original * 0.9);
    const s = await createSession(result.bytes, { optimizationLevel: result.loadLevel });
    const out = Array.from((await s.run({ x: image() })).logits!.data as Float32Array);
    await s.release();
    const want = await reference();
    for (const [i, v] of out.entries()) expect(v).toBeCloseTo(want[i]!, 4);
  });
});
