import { readdir } from 'node:fs/promises';
import { CreateMultipartUploadCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { reapMultipartUploads, uploadsDirectory } from '../../../local/s3/reap-uploads.ts';
import { startTestS3, type TestS3 } from '../../support/local-s3.ts';

let t: TestS3;
beforeEach(async () => {
  t = await startTestS3();
});
afterEach(async () => {
  await t.cleanup();
});

/** A multipart upload cut off after its first part, as Ctrl-C leaves one. */
const abandonedUpload = async (key: string, bytes: number): Promise<void> => {
  const { UploadId } = await t.client.send(
    new CreateMultipartUploadCommand({ Bucket: t.s3.bucket, Key: key }),
  );
  await t.client.send(
    new UploadPartCommand({
      Bucket: t.s3.bucket,
      Key: key,
      UploadId,
      PartNumber: 1,
      Body: new Uint8Array(bytes),
    }),
  );
};

describe('reaping multipart uploads', () => {
  it('removes the parts of uploads that were never completed', async () => {
    await abandonedUpload('incoming/big/model.onnx', 5 * 1024 * 1024);
    await abandonedUpload('incoming/big/other.onnx', 1024);
    const dir = uploadsDirectory(t.directory, t.s3.bucket);
    expect(await readdir(dir)).toHaveLength(2);

    const reaped = await reapMultipartUploads(t.directory, t.s3.bucket, { idleMs: 0 });
    expect(reaped.uploads).toBe(2);
    expect(reaped.bytes).toBeGreaterThanOrEqual(5 * 1024 * 1024 + 1024);
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps an upload that is still receiving parts', async () => {
    await abandonedUpload('incoming/big/model.onnx', 1024);
    const reaped = await reapMultipartUploads(t.directory, t.s3.bucket, { idleMs: 60 * 60_000 });
    expect(reaped).toEqual({ uploads: 0, bytes: 0 });
    const later = await reapMultipartUploads(t.directory, t.s3.bucket, {
      idleMs: 60 * 60_000,
      now: Date.now() + 2 * 60 * 60_000,
    });
    expect(later.uploads).toBe(1);
  });

  it('finds nothing to do in a bucket that never had a multipart upload', async () => {
    expect(await reapMultipartUploads(t.directory, t.s3.bucket, { idleMs: 0 })).toEqual({
      uploads: 0,
      bytes: 0,
    });
  });
});
