import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, StorageUnavailableError } from '../../src/storage/index.ts';
import { S3ObjectStore } from '../../src/storage/s3.ts';
import { type FaultProxy, keyMatch, startFaultProxy } from '../support/fault-proxy.ts';
import { startTestS3, type TestS3 } from '../support/local-s3.ts';

let t: TestS3;
let proxy: FaultProxy;
/** the same bucket through the fault proxy, one attempt per call so a fault is seen as such */
let faulty: S3ObjectStore;

beforeAll(async () => {
  t = await startTestS3();
  proxy = await startFaultProxy({ target: t.s3.endpoint });
  faulty = new S3ObjectStore({
    bucket: t.s3.bucket,
    endpoint: proxy.endpoint,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  });
  await t.store.put('into/large', LARGE);
});
afterAll(async () => {
  faulty.client.destroy();
  await proxy.close();
  await t.cleanup();
});

/** several socket reads' worth, so the copy crosses many chunk boundaries */
const LARGE = new Uint8Array(3 * 1024 * 1024 + 13).map((_, i) => (i * 131 + (i >> 9)) % 256);

const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b)) === 0;

describe('S3ObjectStore.readInto', () => {
  it('copies a whole object into the target byte for byte, reporting its progress', async () => {
    const target = new Uint8Array(LARGE.byteLength);
    const progress: number[] = [];

    const read = await t.store.readInto('into/large', target, {
      onChunk: (copied) => progress.push(copied),
    });

    expect(same(target, LARGE)).toBe(true);
    expect(read).toMatchObject({ copied: LARGE.byteLength, size: LARGE.byteLength });
    expect(read.etag).not.toBe('');
    expect(progress.at(-1)).toBe(LARGE.byteLength);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it('puts ranges at their offsets, leaving the rest of the target alone', async () => {
    const target = new Uint8Array(LARGE.byteLength + 20).fill(0xee);
    const cut = 1024 * 1024 + 7;

    const [head, tail] = await Promise.all([
      t.store.readInto('into/large', target, { range: { start: 0, end: cut - 1 }, offset: 10 }),
      t.store.readInto('into/large', target, {
        range: { start: cut, end: LARGE.byteLength - 1 },
        offset: 10 + cut,
      }),
    ]);

    expect(same(target.subarray(10, 10 + LARGE.byteLength), LARGE)).toBe(true);
    expect([...target.subarray(0, 10), ...target.subarray(10 + LARGE.byteLength)]).toEqual(
      new Array(20).fill(0xee),
    );
    expect(head).toMatchObject({ copied: cut, size: LARGE.byteLength });
    expect(tail).toMatchObject({ copied: LARGE.byteLength - cut, size: LARGE.byteLength });
  });

  it('copies only what a range past the end of the object holds', async () => {
    const target = new Uint8Array(100).fill(0xee);
    const start = LARGE.byteLength - 10;

    const read = await t.store.readInto('into/large', target, {
      range: { start, end: start + 99 },
    });

    expect(read.copied).toBe(10);
    expect(same(target.subarray(0, 10), LARGE.subarray(start))).toBe(true);
    expect(target[10]).toBe(0xee);
  });

  it('refuses a target without room for the range before any request', async () => {
    const target = new Uint8Array(10);

    const err = await t.store
      .readInto('into/large', target, { range: { start: 0, end: 9 }, offset: 1 })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(RangeError);
  });

  it('raises ObjectNotFoundError for a missing key', async () => {
    await expect(t.store.readInto('into/missing', new Uint8Array(4))).rejects.toBeInstanceOf(
      ObjectNotFoundError,
    );
  });

  it('raises StorageUnavailableError for a body cut short of its Content-Length', async () => {
    proxy.set({ kind: 'truncate', bytes: 100_000, match: keyMatch(t.s3.bucket, /^into\//) });
    try {
      const err = await faulty
        .readInto('into/large', new Uint8Array(LARGE.byteLength))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as Error).message).toContain('into/large');
    } finally {
      proxy.clear();
    }
  });

  it('raises StorageUnavailableError for a dropped connection and a 5xx', async () => {
    try {
      proxy.set({ kind: 'drop' });
      await expect(
        faulty.readInto('into/large', new Uint8Array(LARGE.byteLength)),
      ).rejects.toBeInstanceOf(StorageUnavailableError);
      proxy.set({ kind: 'status', status: 500 });
      await expect(
        faulty.readInto('into/large', new Uint8Array(LARGE.byteLength)),
      ).rejects.toBeInstanceOf(StorageUnavailableError);
    } finally {
      proxy.clear();
    }
    const target = new Uint8Array(LARGE.byteLength);
    await faulty.readInto('into/large', target);
    expect(same(target, LARGE)).toBe(true);
  });
});
