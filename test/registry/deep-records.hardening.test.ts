import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimKey, describeUpload, INGEST_DEFAULTS, ingestUpload } from '../../src/ingest/index.ts';
import { CorruptRecordError, keys, Registry } from '../../src/registry/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';
import { overwrite, registerVersion } from '../support/registry.ts';

const DEPTH = 100_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);

let s3: TestS3;
let registry: Registry;

beforeAll(async () => {
  s3 = await startTestS3();
  registry = new Registry(s3.store);
});
afterAll(async () => {
  await s3?.cleanup();
});

describe('registry records nested deeper than the cap', () => {
  it('reads a deep manifest, aliases or history record as CorruptRecord, never a stack overflow', async () => {
    const manifest = await registerVersion(registry, 'deep', tinyModel());
    const json = JSON.stringify({ ...manifest, details: '__DEEP__' }).replace(
      '"__DEEP__"',
      deepArray,
    );
    await overwrite(s3.store, keys.manifest('deep', manifest.version), json);
    await overwrite(
      s3.store,
      keys.aliases('deep'),
      `{"model":"deep","knownGood":[],"rolledBack":[],"updatedAt":"x","extra":${deepArray}}`,
    );

    await expect(registry.getManifest('deep', manifest.version)).rejects.toBeInstanceOf(
      CorruptRecordError,
    );
    await expect(registry.getAliases('deep')).rejects.toBeInstanceOf(CorruptRecordError);
  });

  it('takes a deep upload claim for a corrupt record on the first delivery', async () => {
    const key = keys.incomingModel('claimed', 'model.onnx');
    await s3.store.put(key, tinyModel());
    // the claim ingest will look for: key, ETag and what else the outcome depends on
    const upload = await describeUpload(s3.store, key);
    await overwrite(
      s3.store,
      claimKey('claimed', upload),
      `{"state":"running","attempt":1,"leaseUntil":${deepArray},"expiresAt":"2000-01-01T00:00:00Z"}`,
    );

    await expect(
      ingestUpload(
        { bucketKey: key, etag: upload.etag },
        { registry, settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 } },
      ),
    ).rejects.toBeInstanceOf(CorruptRecordError);
  });
});
