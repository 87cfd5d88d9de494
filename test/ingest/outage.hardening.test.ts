import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3EventRecord } from 'aws-lambda';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHandler, decodeEventKey } from '../../functions/ingest/handler.ts';
import { INGEST_DEFAULTS, type IngestResult } from '../../src/ingest/index.ts';
import { keys } from '../../src/registry/index.ts';
import type { RequestInfo } from '../support/fault-proxy.ts';
import { auditRegistry } from '../support/hardening/audit.ts';
import { type FaultyStorage, startFaultyStorage } from '../support/hardening/faulty-storage.ts';
import { tinyModel } from '../support/models.ts';

/** The cloud stack's ingest timeout (infra settings `ingestTimeoutSeconds`). */
const LAMBDA_TIMEOUT_MS = 300_000;

let storage: FaultyStorage;
let record: S3EventRecord | undefined;

beforeAll(async () => {
  storage = await startFaultyStorage();
  storage.s3.s3.onObjectCreated((r) => {
    if (decodeEventKey(r.s3.object.key) === keys.incomingModel('outage', 'model.onnx')) record = r;
  });
});
afterAll(() => storage?.close());

const handler = createHandler(() => ({
  registry: storage.registry,
  settings: { ...INGEST_DEFAULTS, intraOpThreads: 1 },
}));

const deliver = async (event: S3EventRecord): Promise<IngestResult | { thrown: string }> => {
  try {
    const [result] = await handler(
      { Records: [event] },
      { getRemainingTimeInMillis: () => LAMBDA_TIMEOUT_MS },
    );
    return result ?? { thrown: 'no result' };
  } catch (err) {
    return { thrown: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
};

/**
 * A storage outage that starts right after ingest took the upload's claim and lasts past the
 * invocation's own S3 retries, so the claim cannot be released either. Lambda redelivers the
 * failed event twice, about one and three minutes later: both fall inside the first invocation's
 * deadline (its 300 s timeout), when the claim still reads `running`. Once storage is back, one
 * of those two redeliveries must settle the upload (registered or rejected): with no outcome at
 * all, `maas push` waits forever and the event ends in the failure destination.
 */
it('settles an upload on its redeliveries when an outage began after the claim and blocked its release', async () => {
  const key = keys.incomingModel('outage', 'model.onnx');
  await storage.s3.client.send(
    new PutObjectCommand({
      Bucket: storage.s3.s3.bucket,
      Key: key,
      Body: tinyModel({ seed: 7 }),
      Metadata: { 'maas-quantize': 'off' },
    }),
  );
  for (let i = 0; i < 200 && record === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  if (record === undefined) throw new Error('no ObjectCreated event for the upload');
  let claimed = false;
  storage.proxy.set({
    kind: 'drop',
    match: ({ method, path }: RequestInfo) => {
      if (!claimed && method === 'PUT' && path.includes('/uploads/')) {
        claimed = true;
        return false;
      }
      return claimed;
    },
  });
  const first = await deliver(record);
  storage.proxy.clear();
  expect(first).toHaveProperty('thrown');
  expect((await auditRegistry(storage.direct)).problems).toEqual([]);

  const retries = [await deliver(record), await deliver(record)];
  expect(
    retries.filter((r) => 'status' in r),
    JSON.stringify(retries),
  ).not.toEqual([]);
  expect((await auditRegistry(storage.direct)).problems).toEqual([]);
});
