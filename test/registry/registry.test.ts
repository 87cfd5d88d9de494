import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IntegrityError,
  InvalidModelNameError,
  keys,
  type Manifest,
  ModelNotFoundError,
  Registry,
  VersionConflictError,
  VersionNotFoundError,
} from '../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { overwrite } from '../support/registry.ts';

let s3: TestS3;
let registry: Registry;

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterAll(async () => {
  await s3.cleanup();
});

const manifestFor = (
  model: string,
  version: number,
  fp32: Manifest['variants']['fp32'],
  sourceKey: string,
): Manifest => ({
  model,
  version,
  served: 'fp32',
  variants: { fp32 },
  source: { key: sourceKey, etag: `etag-${version}` },
  irVersion: 9,
  opsetImports: [{ domain: '', version: 17 }],
  producer: { name: 'test', version: '1' },
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
  createdAt: new Date().toISOString(),
});

/** The whole write path of one ingest: reserve, variant, manifest (commit), aliases, history. */
async function register(model: string, upload: number): Promise<number> {
  const sourceKey = `incoming/${model}/upload-${upload}.onnx`;
  const { version } = await registry.reserveVersion(model, { sourceKey, etag: `e${upload}` });
  const bytes = new TextEncoder().encode(`model bytes of upload ${upload}`);
  const fp32 = await registry.putVariant(model, version, 'fp32', bytes);
  await registry.commitManifest(manifestFor(model, version, fp32, sourceKey));
  await registry.updateAliases(model, (current) => ({
    model,
    production: current?.production ?? version,
    knownGood: [...(current?.knownGood ?? []), version],
    rolledBack: current?.rolledBack ?? [],
    updatedAt: '',
  }));
  await registry.appendHistory({
    model,
    event: 'registered',
    version,
    at: new Date().toISOString(),
    actor: 'ingest',
    details: { sourceKey, etag: `e${upload}` },
  });
  return version;
}

describe('Registry against the local S3', () => {
  it('gives 20 racing registrations versions 1..20 once each and loses no write', async () => {
    const model = 'race';
    const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => register(model, i)));

    const expected = Array.from({ length: 20 }, (_, i) => i + 1);
    expect([...versions].sort((a, b) => a - b)).toEqual(expected);
    expect(await registry.listVersions(model)).toEqual(expected);
    for (const version of expected) {
      const manifest = await registry.getManifest(model, version);
      expect(manifest.version).toBe(version);
      const bytes = await registry.readVariant(model, version, 'fp32', { manifest });
      expect(new TextDecoder().decode(bytes)).toMatch(/^model bytes of upload \d+$/);
    }
    const aliases = await registry.getAliases(model);
    expect([...(aliases?.aliases.knownGood ?? [])].sort((a, b) => a - b)).toEqual(expected);
    const history = await registry.history(model);
    expect(history.map((record) => record.version).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      expected,
    );
    const uploads = new Set(history.map((record) => record.details?.sourceKey));
    expect(uploads.size).toBe(20);
  });

  it("resumes an upload's own uncommitted reservation instead of leaving a gap", async () => {
    const upload = { sourceKey: 'incoming/resume/m.onnx', etag: 'first' };
    const first = await registry.reserveVersion('resume', upload);
    // the delivery failed before recording its number: the retry asks again
    const again = await registry.reserveVersion('resume', upload);
    const other = await registry.reserveVersion('resume', { ...upload, etag: 'second' });

    expect(first.version).toBe(1);
    expect(again.version).toBe(1);
    expect(other.version).toBe(2);
  });

  it('lists models with their production and candidate versions', async () => {
    await register('summary', 1);
    await registry.updateAliases('summary', (current) =>
      current === undefined
        ? undefined
        : { ...current, candidate: { version: 1, weight: 0.1, bakeUntil: '2030-01-01T00:00:00Z' } },
    );
    const summary = await registry.listModelsSummary();
    expect(summary).toContainEqual({
      name: 'summary',
      production: 1,
      candidate: { version: 1, weight: 0.1, bakeUntil: '2030-01-01T00:00:00Z' },
    });
    expect(await registry.listModels()).toContain('race');
  });

  it('writes nothing when the update function returns undefined', async () => {
    const before = await registry.getAliases('summary');
    const result = await registry.updateAliases('summary', () => undefined);
    expect(result.changed).toBe(false);
    expect(result.etag).toBe(before?.etag);
    expect((await registry.getAliases('summary'))?.etag).toBe(before?.etag);
  });

  it('answers a conditional aliases read with undefined until aliases change', async () => {
    const before = await registry.getAliases('summary');
    expect(before).toBeDefined();
    expect(await registry.getAliasesIfChanged('summary', before?.etag ?? '')).toBeUndefined();
    await registry.updateAliases('summary', (current) =>
      current === undefined ? undefined : { ...current, candidate: undefined },
    );
    const after = await registry.getAliasesIfChanged('summary', before?.etag ?? '');
    expect(after?.aliases.candidate).toBeUndefined();
    expect(after?.etag).not.toBe(before?.etag);
  });

  it('refuses variant bytes that no longer match the manifest', async () => {
    const version = await register('tampered', 1);
    await overwrite(s3.store, keys.variant('tampered', version, 'fp32'), 'other bytes');
    await expect(registry.readVariant('tampered', version, 'fp32')).rejects.toBeInstanceOf(
      IntegrityError,
    );
  });

  it('keeps versions immutable: same bytes are a no-op, different bytes a conflict', async () => {
    const { version } = await registry.reserveVersion('immutable');
    const bytes = new TextEncoder().encode('original');
    const first = await registry.putVariant('immutable', version, 'fp32', bytes);
    expect(await registry.putVariant('immutable', version, 'fp32', bytes)).toEqual(first);
    await expect(
      registry.putVariant('immutable', version, 'fp32', new TextEncoder().encode('changed')),
    ).rejects.toBeInstanceOf(VersionConflictError);
    const manifest = manifestFor('immutable', version, first, 'incoming/immutable/a.onnx');
    await registry.commitManifest(manifest);
    await registry.commitManifest(manifest);
    await expect(registry.commitManifest({ ...manifest, served: 'int8' })).rejects.toBeInstanceOf(
      VersionConflictError,
    );
  });

  it('records a rejection as one history record and nothing else', async () => {
    const { record } = await registry.recordRejection({
      model: 'rejected-only',
      sourceKey: 'incoming/rejected-only/bad.onnx',
      etag: '"abc123"',
      code: 'NotOnnx',
      reason: 'the file is not an ONNX model',
    });
    const { keys: stored } = await s3.store.list(keys.modelPrefix('rejected-only'));
    expect(stored).toHaveLength(1);
    expect(stored[0]?.key.startsWith(keys.historyPrefix('rejected-only'))).toBe(true);
    expect(record.details).toMatchObject({ etag: 'abc123', code: 'NotOnnx' });
    const outcome = await registry.findUploadOutcome('rejected-only', {
      sourceKey: 'incoming/rejected-only/bad.onnx',
      etag: 'abc123',
    });
    expect(outcome?.reason).toBe('the file is not an ONNX model');
    expect(await registry.listVersions('rejected-only')).toEqual([]);
  });

  it('names missing models and versions and invalid names', async () => {
    await expect(registry.listVersions('nothing-here')).rejects.toBeInstanceOf(ModelNotFoundError);
    await expect(registry.getManifest('race', 999)).rejects.toBeInstanceOf(VersionNotFoundError);
    await expect(registry.getManifest('Bad Name', 1)).rejects.toBeInstanceOf(InvalidModelNameError);
    expect(await registry.getAliases('nothing-here')).toBeUndefined();
  });
});
