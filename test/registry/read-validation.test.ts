import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CorruptRecordError, keys, type Manifest, Registry } from '../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';
import { invoke } from '../support/predict-fixtures.ts';
import { overwrite, registerVersion, setAliases } from '../support/registry.ts';

type Handler = typeof import('../../functions/predict/handler.ts').handler;

let s3: TestS3;
let tmp: string;
let registry: Registry;
let handler: Handler;
const manifests: Record<string, Manifest> = {};

const get = (path: string) => invoke(handler, { method: 'GET', path });
const errorOf = (body: unknown): string =>
  (
    JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body as Uint8Array)) as {
      error: string;
    }
  ).error;

/** Rewrites a committed manifest with `change` applied, as a hand edit would. */
const editManifest = async (model: string, version: number, change: (m: Manifest) => unknown) => {
  const manifest = structuredClone(manifests[`${model}@${version}`]) as Manifest;
  await overwrite(
    s3.store,
    keys.manifest(model, version),
    JSON.stringify(change(manifest) ?? manifest),
  );
};

beforeAll(async () => {
  s3 = await startTestS3();
  tmp = await mkdtemp(join(tmpdir(), 'maas-read-validation-'));
  registry = new Registry(s3.store);
  let seed = 1;
  for (const [model, versions] of [
    ['good', 1],
    ['truncated', 1],
    ['foreign', 2],
    ['typed', 1],
  ] as const) {
    for (let v = 1; v <= versions; v++) {
      const manifest = await registerVersion(registry, model, tinyModel({ seed: seed++ }));
      manifests[`${model}@${manifest.version}`] = manifest;
    }
    await setAliases(registry, model, { production: versions });
  }
  // a truncated write of aliases.json
  const aliases = JSON.stringify((await registry.getAliases('truncated'))?.aliases);
  await overwrite(s3.store, keys.aliases('truncated'), aliases.slice(0, aliases.length / 2));
  // version 2's manifest naming version 1's bytes (whose sha256 it also copies)
  await editManifest('foreign', 2, (m) => {
    m.variants.fp32 = { ...(manifests['foreign@1'] as Manifest).variants.fp32 };
  });
  // a field of the wrong type
  await editManifest('typed', 1, (m) => ({
    ...m,
    variants: { fp32: { ...m.variants.fp32, bytes: String(m.variants.fp32.bytes) } },
  }));

  for (const [name, value] of Object.entries(s3Env(s3.s3))) vi.stubEnv(name, value);
  vi.stubEnv('MAAS_TMP_CACHE_DIR', tmp);
  vi.stubEnv('MAAS_INTRA_OP_THREADS', '1');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
  ({ handler } = await import('../../functions/predict/handler.ts'));
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await s3?.cleanup();
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('a malformed record, read through the predict API', () => {
  it.each([
    ['truncated', '/v2/models/truncated/ready', 'registry/truncated/aliases.json'],
    ['truncated', '/v2/models/truncated', 'registry/truncated/aliases.json'],
    ['foreign', '/v2/models/foreign/ready', 'registry/foreign/2/manifest.json'],
    ['typed', '/v2/models/typed/ready', 'registry/typed/1/manifest.json'],
  ])('answers 503 for %s alone (%s), naming the object', async (_model, path, key) => {
    const res = await get(path);
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(errorOf(res.body)).toContain(key);
  });

  it('answers 503 on inference too, never serving another version’s bytes', async () => {
    const res = await invoke(handler, {
      method: 'POST',
      path: '/v2/models/foreign/infer',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [] }),
    });
    expect(res.status).toBe(503);
    expect(errorOf(res.body)).toContain('registry/foreign/2/manifest.json');
  });

  it('keeps every other model, the listing and health answering', async () => {
    expect((await get('/v2/health/ready')).status).toBe(200);
    expect((await get('/v2/health/live')).status).toBe(200);
    const list = await get('/v2/models');
    expect(list.status).toBe(200);
    const names = (JSON.parse(String(list.body)) as { models: { name: string }[] }).models.map(
      (m) => m.name,
    );
    expect(names).toEqual(expect.arrayContaining(['good', 'foreign', 'typed']));
    expect(names).not.toContain('truncated');
    expect((await get('/v2/models/good/ready')).status).toBe(200);
    expect((await get('/v2/models/foreign/versions/1/ready')).status).toBe(200);
  });
});

describe('Registry reads', () => {
  it('say what is wrong with a manifest, field by field', async () => {
    const err = await registry.getManifest('typed', 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptRecordError);
    expect((err as CorruptRecordError).details).toMatchObject({
      key: 'registry/typed/1/manifest.json',
      model: 'typed',
      version: 1,
      problems: ['variants.fp32.bytes must be a positive integer'],
    });
    const foreign = await registry.getManifest('foreign', 2).catch((e: unknown) => e);
    expect((foreign as CorruptRecordError).message).toContain(
      `variants.fp32.key must be this version's own "registry/foreign/2/model.onnx"`,
    );
  });

  it('never read a variant at a key that is not the version’s own', async () => {
    const own = manifests['foreign@2'] as Manifest;
    const forged = {
      ...own,
      variants: { fp32: (manifests['foreign@1'] as Manifest).variants.fp32 },
    };
    await expect(
      registry.readVariant('foreign', 2, 'fp32', { manifest: forged }),
    ).rejects.toBeInstanceOf(CorruptRecordError);
  });

  it('list every model, marking the one whose aliases cannot be read', async () => {
    const summary = await registry.listModelsSummary();
    expect(summary.find((m) => m.name === 'truncated')).toEqual({
      name: 'truncated',
      corrupt: 'registry/truncated/aliases.json',
    });
    expect(summary.find((m) => m.name === 'good')).toMatchObject({ production: 1 });
  });
});
