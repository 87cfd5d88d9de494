/**
 * What the two S3 stores share: the full SDK client (`s3-object-store.ts`, every operation) and
 * predict's reader (`s3-reader.ts`, signed GET/HEAD/LIST only). Status → error mapping, response
 * bodies copied into a target or collected under a cap, and parallel ranged reads.
 */
import { errorMessage } from '../errors/index.ts';
import {
  type GetLargeOptions,
  normalizeEtag,
  ObjectNotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  type ReadIntoOptions,
  type ReadIntoResult,
  StorageUnavailableError,
  type StoredObject,
  type StoredObjectHead,
} from './object-store.ts';

/** `abc` → `"abc"`: S3 returns quoted ETags, event records carry bare ones. */
export const quoteEtag = (etag: string): string =>
  etag === '*' ? etag : `"${normalizeEtag(etag)}"`;

/** One S3 failure as the store's typed errors: 404 missing, 412/409 lost race, else unavailable. */
export function translateS3Error(
  failure: { status: number | undefined; code: string | undefined; cause: unknown },
  operation: string,
  key: string,
  bucket: string,
): Error {
  const { status, code, cause } = failure;
  if (status === 404 || code === 'NoSuchKey' || code === 'NotFound') {
    return new ObjectNotFoundError(key, { cause });
  }
  // 409 ConditionalRequestConflict: AWS lost a concurrent conditional write; same remedy as 412.
  if (status === 412 || status === 409 || code === 'PreconditionFailed') {
    return new PreconditionFailedError(key, { cause });
  }
  const reason = status === undefined ? errorMessage(cause) : `HTTP ${status} ${code ?? ''}`.trim();
  return new StorageUnavailableError(
    `S3 ${operation} ${key} in bucket ${bucket} failed (${reason}); the model store is unreachable or refused the call, retry later`,
    { cause, details: { key, bucket, operation, status } },
  );
}

export type NodeBody = AsyncIterable<Uint8Array> & { destroy?: () => void };

export const isAsyncIterable = (body: unknown): body is NodeBody =>
  typeof body === 'object' && body !== null && Symbol.asyncIterator in body;

export const destroyBody = (body: unknown): void => {
  if (isAsyncIterable(body)) body.destroy?.();
};

/** the whole object's size: a range's `Content-Range` total, else the bytes received */
export function sizeOf(contentRange: string | undefined, fallback: number): number {
  const total = contentRange?.match(/\/(\d+)$/)?.[1];
  return total === undefined ? fallback : Number(total);
}

/** S3 orders keys by UTF-8 bytes; plain `<` on UTF-16 strings differs outside the BMP. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

const overflow = (key: string, room: number): StorageUnavailableError =>
  new StorageUnavailableError(
    `S3 sent more than the ${room} bytes asked for of ${key}; retry the read`,
    { details: { key, room } },
  );

/** `readInto`'s checks before any request: the target must have room for what is asked. */
export function roomFor(key: string, target: Uint8Array, options: ReadIntoOptions): number {
  const { range, offset = 0 } = options;
  const room = target.byteLength - offset;
  if (!Number.isInteger(offset) || room < 0 || (range && range.end - range.start + 1 > room)) {
    throw new RangeError(
      `readInto ${key}: a target of ${target.byteLength} bytes has no room at offset ${offset} for ${range ? `bytes ${range.start}-${range.end}` : 'the object'}`,
    );
  }
  return room;
}

/**
 * Copies each chunk of a response body as it arrives into `target` at `offset`: a 40 MB body
 * collected and then joined is held twice, and the garbage and copying that costs were most of
 * the time of a local read. A body longer than `room`, or shorter than its announced length,
 * fails with StorageUnavailableError.
 */
export async function copyBody(
  where: { key: string; bucket: string },
  body: NodeBody,
  announced: number | undefined,
  target: Uint8Array,
  options: ReadIntoOptions,
): Promise<number> {
  const { key } = where;
  const room = roomFor(key, target, options);
  const offset = options.offset ?? 0;
  if (announced !== undefined && announced > room) {
    body.destroy?.();
    throw overflow(key, room);
  }
  let copied = 0;
  try {
    for await (const chunk of body) {
      if (copied + chunk.byteLength > room) throw overflow(key, room);
      target.set(chunk, offset + copied);
      copied += chunk.byteLength;
      options.onChunk?.(copied);
    }
  } catch (err) {
    if (err instanceof StorageUnavailableError) throw err;
    throw new StorageUnavailableError(
      `reading the body of ${key} from bucket ${where.bucket} failed after ${copied} bytes: ${errorMessage(err)}; retry the read`,
      { cause: err, details: { key, copied } },
    );
  }
  if (announced !== undefined && copied !== announced) {
    // A body shorter than its Content-Length is a cut connection, not a shorter object.
    throw new StorageUnavailableError(
      `S3 announced ${announced} bytes of ${key} but sent ${copied}; retry the read`,
      { details: { key, announced, copied } },
    );
  }
  return copied;
}

/** The body whole, refused as soon as its announced length or the bytes received pass `maxBytes`. */
export async function collectBody(
  where: { key: string; bucket: string },
  body: NodeBody,
  announced: number | undefined,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<Uint8Array> {
  const { key } = where;
  if (announced !== undefined && announced > maxBytes) {
    body.destroy?.();
    throw new ObjectTooLargeError(key, maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        body.destroy?.();
        throw new ObjectTooLargeError(key, maxBytes);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ObjectTooLargeError) throw err;
    throw new StorageUnavailableError(
      `reading the body of ${key} from bucket ${where.bucket} failed after ${size} bytes: ${errorMessage(err)}; retry the read`,
      { cause: err, details: { key, copied: size } },
    );
  }
  if (announced !== undefined && size !== announced) {
    throw new StorageUnavailableError(
      `S3 announced ${announced} bytes of ${key} but sent ${size}; retry the read`,
      { details: { key, announced, copied: size } },
    );
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;

/**
 * Reads a large object with parallel ranged GETs (one stream per part is several times faster
 * than one stream for 40 MB+ models). Every part must carry the ETag the HEAD saw: an object
 * replaced mid-read fails with PreconditionFailedError instead of returning a mix of two bodies.
 */
export async function rangedRead(
  store: {
    head(key: string): Promise<StoredObjectHead>;
    readInto(key: string, target: Uint8Array, options?: ReadIntoOptions): Promise<ReadIntoResult>;
  },
  key: string,
  options: GetLargeOptions = {},
): Promise<StoredObject> {
  const partSize = Math.max(1, options.partSize ?? DEFAULT_PART_SIZE);
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const head = await store.head(key);
  if (
    options.ifMatch !== undefined &&
    normalizeEtag(head.etag) !== normalizeEtag(options.ifMatch)
  ) {
    throw new PreconditionFailedError(key);
  }
  if (options.maxBytes !== undefined && head.size > options.maxBytes) {
    throw new ObjectTooLargeError(key, options.maxBytes);
  }
  const body = new Uint8Array(head.size);
  const starts: number[] = [];
  for (let start = 0; start < head.size; start += partSize) starts.push(start);
  let next = 0;
  const { onChunk } = options;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < starts.length; i = next++) {
      const start = starts[i] ?? 0;
      const end = Math.min(start + partSize, head.size) - 1;
      let told = 0;
      const read = await store.readInto(key, body, {
        range: { start, end },
        offset: start,
        ifMatch: head.etag,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        ...(onChunk === undefined
          ? {}
          : {
              onChunk: (copied: number) => {
                onChunk(copied - told);
                told = copied;
              },
            }),
      });
      if (read.copied !== end - start + 1) {
        throw new StorageUnavailableError(
          `S3 returned ${read.copied} bytes for ${key} bytes ${start}-${end}; retry the read`,
          { details: { key, start, end } },
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, starts.length) }, worker));
  return { ...head, body };
}
