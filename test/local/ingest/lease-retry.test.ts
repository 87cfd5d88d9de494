import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LocalIngest, startLocalIngest } from '../../../local/ingest/index.ts';
import { objectCreatedRecord } from '../../../local/s3/events.ts';
import { type Claim, claimKey, describeUpload } from '../../../src/ingest/index.ts';
import { keys, Registry } from '../../../src/registry/index.ts';
import { s3Env, startTestS3, type TestS3 } from '../../support/local-s3.ts';
import { tinyModel } from '../../support/models.ts';

let t: TestS3;
let ingest: LocalIngest;
const failures: string[] = [];

beforeEach(async () => {
  t = await startTestS3();
  failures.length = 0;
  ingest = startLocalIngest({
    s3: t.s3,
    env: {
      ...s3Env(t.s3),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_DEV: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      MAAS_INTRA_OP_THREADS: '1',
    },
    // far shorter than the lease below: only waiting for the lease can get past it
    retryDelayMs: () => 100,
    timeoutMs: 60_000,
    onOutput: () => undefined,
    onFailure: (_record, reason) => failures.push(reason),
  });
});
afterEach(async () => {
  await ingest.close();
  await t.cleanup();
});

describe('the local trigger and a claim left by a dead instance', () => {
  it('retries once the lease has lapsed, and the upload registers', async () => {
    const registry = new Registry(t.store);
    const key = keys.incomingModel('held', 'm.onnx');
    // Stored before anything listens: the delivery below is the only one.
    await t.store.put(key, tinyModel({ seed: 3 }));
    const upload = await describeUpload(t.store, key);
    const now = Date.now();
    const held: Claim = {
      ...upload,
      state: 'running',
      attempt: 1,
      startedAt: new Date(now - 1000).toISOString(),
      expiresAt: new Date(now + 300_000).toISOString(),
      leaseUntil: new Date(now + 15_000).toISOString(),
      owner: 'an-instance-that-crashed',
    };
    await t.store.put(claimKey('held', upload), JSON.stringify(held), { ifNoneMatch: '*' });

    ingest.deliver(
      objectCreatedRecord({
        bucket: t.s3.bucket,
        key,
        size: 0,
        eTag: upload.etag,
        eventName: 'ObjectCreated:Put',
        sourceIp: '127.0.0.1',
      }),
    );
    await ingest.idle();
    expect(failures).toEqual([]);
    expect(await registry.findUploadOutcome('held', upload)).toMatchObject({
      event: 'registered',
      version: 1,
    });
  }, 120_000);
});
