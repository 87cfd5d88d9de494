import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { type ObjectStore, StorageUnavailableError } from '../storage/index.ts';

export interface RangedReadOptions {
  /** objects at least this large are read with parallel ranged GETs */
  minBytes: number;
  partBytes: number;
  concurrency: number;
}

export interface HashedBytes {
  bytes: Uint8Array;
  /** lower-case hex */
  sha256: string;
  /** hashing left after the last byte arrived (the rest overlapped the download) */
  verifyMs: number;
}

/**
 * Reads the `size` bytes a manifest records for `key`, with their sha256. Large objects are read
 * with parallel ranged GETs (the manifest gives the size, so no HEAD round trip) and hashed while
 * they arrive: the digest advances over the contiguous prefix whenever it grows, so verifying 40 MB
 * costs little beyond the download. An object whose length differs from `size` yields a digest
 * that differs from the manifest's, which the caller refuses like any other mismatch.
 */
export async function readHashed(
  store: ObjectStore,
  key: string,
  size: number,
  options: RangedReadOptions,
): Promise<HashedBytes> {
  if (size < options.minBytes) {
    const object = await store.get(key);
    if (object === undefined) throw new StorageUnavailableError(`S3 returned no body for ${key}`);
    const t0 = performance.now();
    const sha256 = createHash('sha256').update(object.body).digest('hex');
    return { bytes: object.body, sha256, verifyMs: performance.now() - t0 };
  }
  const bytes = new Uint8Array(size);
  const hash = createHash('sha256');
  const partBytes = Math.max(1, options.partBytes);
  const parts = Math.ceil(size / partBytes);
  const arrived = new Array<boolean>(parts).fill(false);
  let hashed = 0;
  let next = 0;
  let lastArrival = 0;
  const fetchParts = async (): Promise<void> => {
    for (let part = next++; part < parts; part = next++) {
      const start = part * partBytes;
      const end = Math.min(size, start + partBytes) - 1;
      const object = await store.get(key, { range: { start, end } });
      // A short part (the object is shorter than its manifest says) leaves zeros: the digest shows it.
      bytes.set((object?.body ?? new Uint8Array(0)).subarray(0, end - start + 1), start);
      arrived[part] = true;
      lastArrival = performance.now();
      for (; hashed < parts && arrived[hashed] === true; hashed++) {
        hash.update(bytes.subarray(hashed * partBytes, Math.min(size, (hashed + 1) * partBytes)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, parts) }, fetchParts));
  const sha256 = hash.digest('hex');
  return { bytes, sha256, verifyMs: performance.now() - lastArrival };
}
