import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Claim,
  claimKey,
  INGEST_DEFAULTS,
  IngestInProgressError,
  ingestUpload,
} from '../../src/ingest/index.ts';
import type { UploadRef } from '../../src/registry/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { tinyModel } from '../support/models.ts';

/**
 * A claim left `running` by an invocation in another execution environment, as Lambda's retry
 * finds it when it lands on a fresh instance: only the lease tells whether its holder is alive.
 */
describe('the lease on a running ingest claim', () => {
  let harness: Harness;
  const settings = { ...INGEST_DEFAULTS, intraOpThreads: 1 };

  beforeAll(async () => {
    harness = await startHarness({ autoDeliver: false });
  });
  afterAll(() => harness?.close());

  const leftRunning = async (
    model: string,
    seed: number,
    claim: { attempt: number; leaseInMs: number; deadlineInMs: number },
  ): Promise<UploadRef> => {
    const upload = await harness.upload(model, 'm.onnx', tinyModel({ seed }));
    const now = Date.now();
    const stored: Claim = {
      ...upload,
      state: 'running',
      attempt: claim.attempt,
      startedAt: new Date(now - 5_000).toISOString(),
      expiresAt: new Date(now + claim.deadlineInMs).toISOString(),
      leaseUntil: new Date(now + claim.leaseInMs).toISOString(),
      owner: 'another-environment',
    };
    await harness.s3.store.put(claimKey(model, upload), JSON.stringify(stored), {
      ifNoneMatch: '*',
    });
    return upload;
  };
  const deliver = (upload: UploadRef) =>
    ingestUpload(
      { bucketKey: upload.sourceKey, etag: upload.etag },
      { registry: harness.registry, settings },
    );

  it('turns a delivery away while the holder keeps its lease, naming when it lapses', async () => {
    const upload = await leftRunning('held', 21, {
      attempt: 1,
      leaseInMs: 30_000,
      deadlineInMs: 240_000,
    });
    const error = await deliver(upload).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(IngestInProgressError);
    const until = (error as IngestInProgressError).details?.until;
    expect(Date.parse(String(until))).toBeLessThan(Date.now() + 31_000);
    expect(await harness.registry.findUploadOutcome('held', upload)).toBeUndefined();
  });

  it('takes over and registers once the lease lapsed, long before the holder’s deadline', async () => {
    const upload = await leftRunning('lapsed', 22, {
      attempt: 1,
      leaseInMs: -1_000,
      deadlineInMs: 240_000,
    });
    expect(await deliver(upload)).toMatchObject({ status: 'registered', version: 1 });
    expect(await harness.registry.listVersions('lapsed')).toEqual([1]);
  });

  it('records a rejection rather than no outcome when every attempt vanished mid-run', async () => {
    const upload = await leftRunning('vanishing', 23, {
      attempt: 2,
      leaseInMs: -1_000,
      deadlineInMs: 120_000,
    });
    expect(await deliver(upload)).toMatchObject({ status: 'rejected', code: 'IngestFailed' });
    const outcome = await harness.registry.findUploadOutcome('vanishing', upload);
    expect(outcome?.reason).toMatch(/previous 2 attempts .* stopped without finishing/);
    expect(await harness.registry.listVersions('vanishing')).toEqual([]);
  });

  it('rejects as timed out when the holder kept its lease up to its deadline', async () => {
    const upload = await leftRunning('slow', 24, {
      attempt: 1,
      leaseInMs: -1_000,
      deadlineInMs: -1_000,
    });
    expect(await deliver(upload)).toMatchObject({ status: 'rejected', code: 'IngestTimedOut' });
  });
});
