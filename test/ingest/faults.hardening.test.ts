import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3EventRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler, decodeEventKey } from '../../functions/ingest/handler.ts';
import { INGEST_DEFAULTS, type IngestDeps, type IngestResult } from '../../src/ingest/index.ts';
import { isOutcomeOf, keys, type UploadRef } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { type Fault, keyMatch } from '../support/fault-proxy.ts';
import { auditRegistry } from '../support/hardening/audit.ts';
import { type FaultyStorage, startFaultyStorage } from '../support/hardening/faulty-storage.ts';
import { tinyModel } from '../support/models.ts';

let storage: FaultyStorage;
let deps: IngestDeps;
const records = new Map<string, S3EventRecord>();

beforeAll(async () => {
  storage = await startFaultyStorage();
  storage.s3.s3.onObjectCreated((record) => {
    records.set(decodeEventKey(record.s3.object.key), record);
  });
  deps = {
    registry: storage.registry,
    settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 },
    maxAttempts: 3,
  };
});

afterAll(() => storage?.close());

const handler = createHandler(() => deps);

/** One Lambda invocation on the upload's event: its results, or what it threw for a retry. */
const deliver = async (
  record: S3EventRecord,
  remainingMs: number,
): Promise<IngestResult | { thrown: string }> => {
  try {
    const [result] = await handler(
      { Records: [record] },
      { getRemainingTimeInMillis: () => remainingMs },
    );
    if (result === undefined) throw new Error('the handler returned no result');
    return result;
  } catch (err) {
    return { thrown: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
};

/** A user's upload, straight to the store (the user is not what is under test). */
const upload = async (
  model: string,
  seed: number,
): Promise<{ ref: UploadRef; record: S3EventRecord }> => {
  const key = keys.incomingModel(model, 'model.onnx');
  const put = await storage.s3.client.send(
    new PutObjectCommand({
      Bucket: storage.s3.s3.bucket,
      Key: key,
      Body: tinyModel({ seed }),
      Metadata: { 'maas-quantize': 'off' },
    }),
  );
  for (let i = 0; i < 200 && !records.has(key); i++) await new Promise((r) => setTimeout(r, 10));
  const record = records.get(key);
  if (record === undefined) throw new Error(`no ObjectCreated for ${key}`);
  return { ref: { sourceKey: key, etag: normalizeEtag(put.ETag ?? '') }, record };
};

const settled = (outcome: IngestResult | { thrown: string }): boolean =>
  'status' in outcome && outcome.status !== 'ignored';

const bucket = () => storage.s3.s3.bucket;
const writes = (pattern: RegExp) => keyMatch(bucket(), pattern, ['PUT']);

/**
 * Faults during a first delivery. Each is cleared afterwards and the event redelivered, as
 * Lambda retries an asynchronous invocation that failed.
 */
const episodes: [string, () => Fault][] = [
  ['the store is down for the whole delivery', () => ({ kind: 'drop' })],
  ['every write answers 500', () => ({ kind: 'status', status: 500, match: writes(/./) })],
  [
    'the variant write fails',
    () => ({ kind: 'status', status: 500, match: writes(/^registry\/.*\/model\.onnx$/) }),
  ],
  [
    'the manifest commit fails',
    () => ({ kind: 'status', status: 500, match: writes(/\/manifest\.json$/) }),
  ],
  [
    'the aliases write fails after the commit',
    () => ({ kind: 'drop', match: writes(/\/aliases\.json$/) }),
  ],
  [
    'the history writes fail',
    () => ({ kind: 'status', status: 503, match: writes(/\/history\//) }),
  ],
  [
    'the download of the upload is cut off',
    () => ({
      kind: 'truncate',
      bytes: 40,
      match: keyMatch(bucket(), /^incoming\/.*\.onnx$/, ['GET']),
    }),
  ],
  ['a third of all calls are dropped', () => ({ kind: 'drop', rate: 1 / 3 })],
];

describe('ingest under storage faults', () => {
  it.each(episodes.map(([name, fault], i) => [name, fault, i] as const))(
    '%s: the redelivered event registers exactly one version, aliases never name an uncommitted one',
    async (_name, fault, index) => {
      const model = `faulty-${index}`;
      const { ref, record } = await upload(model, 100 + index);
      storage.proxy.set(fault());
      const deliveries = [await deliver(record, 60_000)];
      storage.proxy.clear();
      if (fault().rate === undefined) expect(deliveries[0]).toHaveProperty('thrown');
      expect((await auditRegistry(storage.direct)).problems).toEqual([]);
      // Lambda delivers a failed asynchronous event twice more
      while (!settled(deliveries.at(-1) ?? { thrown: '' }) && deliveries.length < 3) {
        deliveries.push(await deliver(record, 60_000));
        expect((await auditRegistry(storage.direct)).problems).toEqual([]);
      }
      const last = deliveries.at(-1);
      expect(last, JSON.stringify(deliveries)).toMatchObject({ status: 'registered', version: 1 });
      // later deliveries change nothing
      expect(await deliver(record, 60_000)).toMatchObject({ status: 'duplicate' });

      const outcomes = (await storage.direct.history(model)).filter((r) => isOutcomeOf(r, ref));
      expect(outcomes).toMatchObject([{ event: 'registered', version: 1 }]);
      expect(await storage.direct.listVersions(model)).toEqual([1]);
      const { prefixes } = await storage.s3.store.list(keys.modelPrefix(model), { delimiter: '/' });
      expect(prefixes.filter((p) => /\/\d+\/$/.test(p))).toEqual([keys.versionPrefix(model, 1)]);
      expect((await storage.direct.getAliases(model))?.aliases.production).toBe(1);
    },
  );

  it('leaves every object of the registry readable and verified', async () => {
    const audit = await auditRegistry(storage.direct);
    expect(audit.problems).toEqual([]);
    expect(audit.versions).toBe(episodes.length);
  });
});
