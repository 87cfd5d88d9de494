import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectTooLargeError, PreconditionFailedError } from '../../src/storage/index.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';
import { tinyModel } from '../support/models.ts';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startTestS3();
});
afterAll(async () => {
  await s3?.cleanup();
});

describe('S3ObjectStore sized reads', () => {
  it('refuses a GET whose If-Match no longer holds', async () => {
    const { etag } = await s3.store.put('sized/a', tinyModel());
    await s3.store.put('sized/a', tinyModel({ seed: 2 }));
    await expect(s3.store.get('sized/a', { ifMatch: etag })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
    await expect(s3.store.getLarge('sized/a', { ifMatch: etag })).rejects.toBeInstanceOf(
      PreconditionFailedError,
    );
  });

  it('stops reading past maxBytes', async () => {
    const bytes = tinyModel({ paddingFloats: 500_000 });
    const { etag } = await s3.store.put('sized/b', bytes);
    await expect(s3.store.get('sized/b', { maxBytes: 1000 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    await expect(s3.store.getLarge('sized/b', { maxBytes: 1000 })).rejects.toBeInstanceOf(
      ObjectTooLargeError,
    );
    const exact = await s3.store.get('sized/b', { ifMatch: etag, maxBytes: bytes.byteLength });
    expect(Buffer.compare(exact?.body ?? new Uint8Array(), bytes)).toBe(0);
  });
});
