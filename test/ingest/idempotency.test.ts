import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimKey, INGEST_DEFAULTS, ingestUpload } from '../../src/ingest/index.ts';
import { keys, type Manifest, Registry } from '../../src/registry/index.ts';
import { StorageUnavailableError } from '../../src/storage/index.ts';
import { type Harness, registryKeys, startHarness } from '../support/ingest-harness.ts';
import { tinyModel } from '../support/models.ts';

/** A registry whose first `failures` manifest commits (or alias updates) fail. */
class FlakyRegistry extends Registry {
  constructor(
    registry: Registry,
    private failures: number,
    private readonly error: () => Error = () => new StorageUnavailableError('S3 is down'),
    private readonly step: 'commitManifest' | 'updateAliases' = 'commitManifest',
  ) {
    super(registry.store);
  }

  override async commitManifest(manifest: Manifest): Promise<{ key: string; etag: string }> {
    if (this.step === 'commitManifest' && this.failures-- > 0) throw this.error();
    return super.commitManifest(manifest);
  }

  override async updateAliases(
    ...args: Parameters<Registry['updateAliases']>
  ): ReturnType<Registry['updateAliases']> {
    if (this.step === 'updateAliases' && this.failures-- > 0) throw this.error();
    return super.updateAliases(...args);
  }
}

describe('ingest idempotency and races', () => {
  let harness: Harness;
  const flaky = new Map<string, Registry>();

  beforeAll(async () => {
    harness = await startHarness({
      autoDeliver: false,
      depsFor: (model) => {
        const registry = flaky.get(model);
        return registry === undefined ? {} : { registry, maxAttempts: 2 };
      },
    });
  });
  afterAll(() => harness?.close());

  const recordOf = (key: string) => {
    const record = harness.records.find((r) => decodeURIComponent(r.s3.object.key) === key);
    if (record === undefined) throw new Error(`no event for ${key}`);
    return record;
  };

  it('registers two different uploads made at the same moment as two versions', async () => {
    const uploads = await Promise.all(
      [1, 2].map((seed) => harness.upload('race', `m${seed}.onnx`, tinyModel({ seed }))),
    );
    await harness.settled();
    const results = await Promise.all(uploads.map((u) => harness.deliver([recordOf(u.sourceKey)])));
    expect(results.flat().map((r) => r.status)).toEqual(['registered', 'registered']);
    expect(await harness.registry.listVersions('race')).toEqual([1, 2]);
    const sources = await Promise.all(
      [1, 2].map(async (v) => (await harness.registry.getManifest('race', v)).source.key),
    );
    expect(sources.sort()).toEqual(uploads.map((u) => u.sourceKey).sort());
  });

  it('registers once when the same event arrives several times at once, and again later', async () => {
    const upload = await harness.upload('dup', 'm.onnx', tinyModel({ seed: 7 }));
    await harness.settled();
    const record = recordOf(upload.sourceKey);
    const settled = await Promise.allSettled([1, 2, 3].map(() => harness.deliver([record])));
    const statuses = settled.map((s) =>
      s.status === 'fulfilled' ? s.value[0]?.status : (s.reason as Error).name,
    );
    expect(statuses.filter((s) => s === 'registered')).toHaveLength(1);
    expect(
      statuses.every((s) => ['registered', 'duplicate', 'IngestInProgressError'].includes(s ?? '')),
    ).toBe(true);
    const later = await harness.deliver([record]);
    expect(later.map((r) => r.status)).toEqual(['duplicate']);
    expect(await harness.registry.listVersions('dup')).toEqual([1]);
    const outcomes = (await harness.registry.history('dup')).filter(
      (r) => r.event === 'registered',
    );
    expect(outcomes).toHaveLength(1);
  });

  it('resumes with the same version when a retry follows a storage failure', async () => {
    flaky.set('flaky', new FlakyRegistry(harness.registry, 1));
    const upload = await harness.upload('flaky', 'm.onnx', tinyModel({ seed: 8 }));
    await harness.settled();
    const record = recordOf(upload.sourceKey);
    await expect(harness.deliver([record])).rejects.toBeInstanceOf(StorageUnavailableError);
    const claim = await harness.s3.store.get(claimKey('flaky', upload));
    expect(JSON.parse(new TextDecoder().decode(claim?.body))).toMatchObject({
      state: 'released',
      version: 1,
    });
    // the reserved version has no manifest: it is not a registered version
    expect(await harness.registry.listVersions('flaky')).toEqual([]);

    const retried = await harness.deliver([record]);
    expect(retried).toMatchObject([{ status: 'registered', version: 1 }]);
    expect(await harness.registry.listVersions('flaky')).toEqual([1]);
    // one version's objects, no second reservation; the pre-optimized graph is stored only when
    // it loads faster on this machine, so it may or may not be there
    const versionKeys = (await registryKeys(harness, 'flaky')).filter((k) => /^\d+\//.test(k));
    expect(versionKeys.filter((k) => !k.endsWith('.optimized.onnx')).sort()).toEqual([
      '1/manifest.json',
      '1/model.onnx',
      '1/reserved.json',
    ]);
    expect(versionKeys.every((k) => k.startsWith('1/'))).toBe(true);
  });

  it('finishes a version committed before a storage failure without registering it twice', async () => {
    const failing = new FlakyRegistry(harness.registry, 1, undefined, 'updateAliases');
    flaky.set('late', failing);
    const upload = await harness.upload('late', 'm.onnx', tinyModel({ seed: 11 }));
    await harness.settled();
    const record = recordOf(upload.sourceKey);
    await expect(harness.deliver([record])).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(await harness.registry.listVersions('late')).toEqual([1]);
    expect(await harness.registry.findUploadOutcome('late', upload)).toBeUndefined();

    const retried = await harness.deliver([record]);
    expect(retried).toMatchObject([{ status: 'registered', version: 1, alias: 'production' }]);
    const events = (await harness.registry.history('late')).map((r) => `${r.event}:${r.version}`);
    expect(events).toEqual(['promoted:1', 'registered:1']);
    expect(await harness.registry.listVersions('late')).toEqual([1]);
  });

  it('records an unexpected failure as a rejection on the last attempt, registering nothing', async () => {
    flaky.set('broken', new FlakyRegistry(harness.registry, 99, () => new Error('a bug')));
    const upload = await harness.upload('broken', 'm.onnx', tinyModel({ seed: 9 }));
    await harness.settled();
    const record = recordOf(upload.sourceKey);
    await expect(harness.deliver([record])).rejects.toThrow('a bug');
    const last = await harness.deliver([record]);
    expect(last).toMatchObject([{ status: 'rejected', code: 'IngestFailed' }]);
    const outcome = await harness.registry.findUploadOutcome('broken', upload);
    expect(outcome?.reason).toMatch(/^Ingest failed 2 times on this upload \(last: a bug\)/);
    expect(await harness.registry.listVersions('broken')).toEqual([]);
    expect(await harness.registry.getAliases('broken')).toBeUndefined();
  });

  it('rejects an upload whose previous invocation died without finishing', async () => {
    const upload = await harness.upload('dead', 'm.onnx', tinyModel({ seed: 10 }));
    await harness.settled();
    const past = new Date(Date.now() - 60_000).toISOString();
    await harness.s3.store.put(
      claimKey('dead', upload),
      JSON.stringify({ ...upload, state: 'running', attempt: 1, startedAt: past, expiresAt: past }),
      { ifNoneMatch: '*' },
    );
    const result = await ingestUpload(
      { bucketKey: upload.sourceKey, etag: upload.etag },
      { registry: harness.registry, settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 } },
    );
    expect(result).toMatchObject({ status: 'rejected', code: 'IngestTimedOut' });
    expect(await harness.registry.listVersions('dead')).toEqual([]);
  });

  it('ignores keys that are not uploads of a model', async () => {
    const registry = harness.registry;
    const deps = { registry, settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 } };
    for (const bucketKey of [
      'incoming/m/x.samples.json',
      'incoming/m/readme.txt',
      'registry/m/1/model.onnx',
      'incoming/Not_Valid/x.onnx',
    ]) {
      expect(await ingestUpload({ bucketKey, etag: 'abc' }, deps)).toMatchObject({
        status: 'ignored',
      });
    }
    expect(await harness.s3.store.list(keys.modelPrefix('m'))).toEqual({ keys: [], prefixes: [] });
  });
});
