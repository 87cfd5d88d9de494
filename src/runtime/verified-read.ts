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
  /** the object's size as the store reported it: a replaced object's can differ from the manifest's */
  objectBytes: number;
  /** hashing left after the last byte arrived (the rest overlapped the download) */
  verifyMs: number;
}

type ReadInto = NonNullable<ObjectStore['readInto']>;

/**
 * Reads the `size` bytes a manifest records for `key`, with their sha256, into one buffer of that
 * size. Large objects are read with parallel ranged GETs (the manifest gives the size, so no HEAD
 * round trip). Every chunk is copied to its place as it arrives and the digest advances over the
 * contiguous prefix whenever it grows, so verifying 40 MB costs little beyond the download. An
 * object shorter than `size` leaves zeros, whose digest differs from the manifest's; one longer
 * shows in `objectBytes`: the caller refuses either like any other mismatch.
 */
export async function readHashed(
  store: ObjectStore,
  key: string,
  size: number,
  options: RangedReadOptions,
): Promise<HashedBytes> {
  const readInto: ReadInto = store.readInto?.bind(store) ?? viaGet(store);
  const bytes = new Uint8Array(size);
  const partBytes = size < options.minBytes ? Math.max(1, size) : Math.max(1, options.partBytes);
  const parts = Math.max(1, Math.ceil(size / partBytes));
  const partEnd = (part: number): number => Math.min(size, (part + 1) * partBytes);
  /** bytes copied into each part so far */
  const filled = new Array<number>(parts).fill(0);
  const done = new Array<boolean>(parts).fill(false);
  const hash = createHash('sha256');
  let hashed = 0;
  let objectBytes = size;
  let lastArrival = performance.now();
  const advance = (): void => {
    for (let part = Math.floor(hashed / partBytes); part < parts; part++) {
      // A finished part that came up short (the object is shorter) is hashed with its zeros.
      const upTo = done[part] === true ? partEnd(part) : part * partBytes + (filled[part] ?? 0);
      if (upTo > hashed) hash.update(bytes.subarray(hashed, upTo));
      hashed = Math.max(hashed, upTo);
      if (hashed < partEnd(part)) return;
    }
  };
  // The first failed part cancels the others: their bytes would be thrown away.
  const abort = new AbortController();
  let next = 0;
  const readParts = async (): Promise<void> => {
    for (let part = next++; part < parts && !abort.signal.aborted; part = next++) {
      const start = part * partBytes;
      const read = await readInto(key, bytes, {
        ...(size === 0 ? {} : { range: { start, end: partEnd(part) - 1 } }),
        offset: start,
        signal: abort.signal,
        onChunk: (copied) => {
          filled[part] = copied;
          advance();
        },
      });
      if (read.size !== size) objectBytes = read.size;
      done[part] = true;
      lastArrival = performance.now();
      advance();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, parts) }, readParts));
  } catch (err) {
    abort.abort(err);
    throw err;
  }
  const sha256 = hash.digest('hex');
  return { bytes, sha256, objectBytes, verifyMs: performance.now() - lastArrival };
}

/** `readInto` for a store without one: each part is read whole, then copied. */
const viaGet =
  (store: ObjectStore): ReadInto =>
  async (key, target, options = {}) => {
    const offset = options.offset ?? 0;
    const object = await store.get(key, {
      ...(options.range === undefined ? {} : { range: options.range }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    if (object === undefined) throw new StorageUnavailableError(`S3 returned no body for ${key}`);
    const body = object.body.subarray(0, target.byteLength - offset);
    target.set(body, offset);
    options.onChunk?.(body.byteLength);
    return { etag: object.etag, copied: body.byteLength, size: object.size };
  };
