import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { storageFromEnv } from '../config/index.ts';
import { errorMessage } from '../errors/index.ts';
import {
  type GetLargeOptions,
  type GetOptions,
  type ListOptions,
  normalizeEtag,
  ObjectNotFoundError,
  type ObjectStore,
  ObjectTooLargeError,
  PreconditionFailedError,
  type PutOptions,
  type ReadIntoOptions,
  type ReadIntoResult,
  StorageUnavailableError,
  type StoredObject,
  type StoredObjectHead,
} from './object-store.ts';

export interface S3ClientOptions {
  /** S3-compatible endpoint; defaults to `AWS_ENDPOINT_URL_S3`, then AWS itself */
  endpoint?: string;
  /** defaults to `AWS_REGION`, `AWS_DEFAULT_REGION`, then us-east-1 */
  region?: string;
  /** defaults to the SDK's provider chain */
  credentials?: S3ClientConfig['credentials'];
  /** @default 3 */
  maxAttempts?: number;
  /** time allowed to open a connection, ms. @default 3000 */
  connectionTimeoutMs?: number;
  /** a socket idle for this long fails the request, ms (not a cap on large transfers). @default 30000 */
  socketTimeoutMs?: number;
}

/**
 * An S3 client configured the way the whole project needs it: path-style addressing whenever an
 * endpoint is given (the local S3 has no virtual-host DNS), checksums only when the operation
 * requires one (s3rver would otherwise store aws-chunked bodies verbatim), bounded timeouts so an
 * unreachable store fails fast instead of hanging a Lambda until its own timeout.
 */
export function createS3Client(options: S3ClientOptions = {}): S3Client {
  const fromEnv =
    options.endpoint === undefined || options.region === undefined ? storageFromEnv() : undefined;
  const endpoint = options.endpoint ?? fromEnv?.endpoint;
  const region = options.region ?? fromEnv?.region;
  return new S3Client({
    region,
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    maxAttempts: options.maxAttempts ?? 3,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      connectionTimeout: options.connectionTimeoutMs ?? 3000,
      socketTimeout: options.socketTimeoutMs ?? 30_000,
    }),
  });
}

export interface S3ObjectStoreOptions extends S3ClientOptions {
  bucket: string;
  /** an existing client; when given, the client options above are ignored */
  client?: S3Client;
}

/** `"abc"` → `abc`: S3 returns quoted ETags, event records carry bare ones. */
const quoteEtag = (etag: string): string => (etag === '*' ? etag : `"${normalizeEtag(etag)}"`);

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;

/** `ObjectStore` over the AWS SDK v3; every SDK failure leaves as one of the store's errors. */
export class S3ObjectStore implements ObjectStore {
  readonly bucket: string;
  readonly client: S3Client;

  constructor(options: S3ObjectStoreOptions) {
    this.bucket = options.bucket;
    this.client = options.client ?? createS3Client(options);
  }

  async head(key: string): Promise<StoredObjectHead> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        etag: out.ETag ?? '',
        size: out.ContentLength ?? 0,
        ...(out.LastModified === undefined ? {} : { lastModified: out.LastModified }),
        metadata: out.Metadata ?? {},
        ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
      };
    } catch (err) {
      throw this.translate(err, 'HEAD', key);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(options.ifNoneMatch === undefined
            ? {}
            : { IfNoneMatch: quoteEtag(options.ifNoneMatch) }),
          ...(options.ifMatch === undefined ? {} : { IfMatch: quoteEtag(options.ifMatch) }),
          ...(options.range === undefined
            ? {}
            : { Range: `bytes=${options.range.start}-${options.range.end}` }),
        }),
        options.signal === undefined ? {} : { abortSignal: options.signal },
      );
    } catch (err) {
      if (httpStatus(err) === 304) return undefined;
      throw this.translate(err, 'GET', key);
    }
    // a store that ignores If-Match must not hand back another object's bytes either
    if (
      options.ifMatch !== undefined &&
      out.ETag !== undefined &&
      normalizeEtag(out.ETag) !== normalizeEtag(options.ifMatch)
    ) {
      destroyBody(out.Body);
      throw new PreconditionFailedError(key);
    }
    const body =
      options.maxBytes === undefined
        ? await this.readBody(out, key)
        : await this.readCapped(out, key, options.maxBytes);
    return {
      key,
      etag: out.ETag ?? '',
      size: sizeOf(out, body.byteLength),
      ...(out.LastModified === undefined ? {} : { lastModified: out.LastModified }),
      metadata: out.Metadata ?? {},
      ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
      body,
    };
  }

  /**
   * Reads a large object with parallel ranged GETs (one stream per part is several times faster
   * than one stream for 40 MB+ models). Every part must carry the ETag the HEAD saw: an object
   * replaced mid-read fails with PreconditionFailedError instead of returning a mix of two bodies.
   */
  async getLarge(key: string, options: GetLargeOptions = {}): Promise<StoredObject> {
    const partSize = Math.max(1, options.partSize ?? DEFAULT_PART_SIZE);
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    const head = await this.head(key);
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
        const read = await this.readInto(key, body, {
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

  /**
   * Copies each chunk of the response as it arrives into `target`: a 40 MB body read through
   * `transformToByteArray` is held twice (the chunk list, then their concatenation), and the
   * garbage and copying that costs were most of the time of a local read.
   */
  async readInto(
    key: string,
    target: Uint8Array,
    options: ReadIntoOptions = {},
  ): Promise<ReadIntoResult> {
    const { range, offset = 0 } = options;
    const room = target.byteLength - offset;
    if (!Number.isInteger(offset) || room < 0 || (range && range.end - range.start + 1 > room)) {
      throw new RangeError(
        `readInto ${key}: a target of ${target.byteLength} bytes has no room at offset ${offset} for ${range ? `bytes ${range.start}-${range.end}` : 'the object'}`,
      );
    }
    let out: GetObjectCommandOutput;
    try {
      out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }),
          ...(options.ifMatch === undefined ? {} : { IfMatch: quoteEtag(options.ifMatch) }),
        }),
        options.signal === undefined ? {} : { abortSignal: options.signal },
      );
    } catch (err) {
      throw this.translate(err, 'GET', key);
    }
    // a store that ignores If-Match must still not hand back another object's bytes
    if (
      options.ifMatch !== undefined &&
      out.ETag !== undefined &&
      normalizeEtag(out.ETag) !== normalizeEtag(options.ifMatch)
    ) {
      out.Body?.transformToByteArray().catch(() => undefined);
      throw new PreconditionFailedError(key);
    }
    const body = out.Body;
    const announced = out.ContentLength;
    if (!isAsyncIterable(body)) {
      const bytes = await this.readBody(out, key);
      const copied = this.copyInto(key, target, offset, room, bytes, 0);
      options.onChunk?.(copied);
      return this.filled(key, out, announced, copied);
    }
    if (announced !== undefined && announced > room) {
      body.destroy?.();
      throw this.overflow(key, room);
    }
    let copied = 0;
    try {
      for await (const chunk of body) {
        copied = this.copyInto(key, target, offset, room, chunk, copied);
        options.onChunk?.(copied);
      }
    } catch (err) {
      if (err instanceof StorageUnavailableError) throw err;
      throw new StorageUnavailableError(
        `reading the body of ${key} from bucket ${this.bucket} failed after ${copied} bytes: ${errorMessage(err)}; retry the read`,
        { cause: err, details: { key, copied } },
      );
    }
    return this.filled(key, out, announced, copied);
  }

  async put(
    key: string,
    body: Uint8Array | string,
    options: PutOptions = {},
  ): Promise<{ etag: string }> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ...(options.ifNoneMatch === undefined ? {} : { IfNoneMatch: options.ifNoneMatch }),
          ...(options.ifMatch === undefined ? {} : { IfMatch: quoteEtag(options.ifMatch) }),
          ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
          ...(options.metadata === undefined ? {} : { Metadata: options.metadata }),
        }),
        options.signal === undefined ? {} : { abortSignal: options.signal },
      );
      return { etag: out.ETag ?? '' };
    } catch (err) {
      // AWS answers If-Match on a missing key with 404: for the caller it is the same lost race.
      if (options.ifMatch !== undefined && httpStatus(err) === 404) {
        throw new PreconditionFailedError(key, { cause: err });
      }
      throw this.translate(err, 'PUT', key);
    }
  }

  async list(
    prefix: string,
    options: ListOptions = {},
  ): Promise<{ keys: StoredObjectHead[]; prefixes: string[] }> {
    const keys: StoredObjectHead[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    try {
      do {
        const out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(options.delimiter === undefined ? {} : { Delimiter: options.delimiter }),
            ...(token === undefined && options.startAfter !== undefined
              ? { StartAfter: options.startAfter }
              : {}),
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
        for (const item of out.Contents ?? []) {
          if (item.Key === undefined) continue;
          keys.push({
            key: item.Key,
            etag: item.ETag ?? '',
            size: item.Size ?? 0,
            ...(item.LastModified === undefined ? {} : { lastModified: item.LastModified }),
            metadata: {},
          });
        }
        for (const common of out.CommonPrefixes ?? []) {
          if (common.Prefix !== undefined) prefixes.push(common.Prefix);
        }
        token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      throw this.translate(err, 'LIST', prefix);
    }
    keys.sort((a, b) => compareKeys(a.key, b.key));
    prefixes.sort(compareKeys);
    return { keys, prefixes };
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.translate(err, 'DELETE', key);
    }
  }

  private copyInto(
    key: string,
    target: Uint8Array,
    offset: number,
    room: number,
    chunk: Uint8Array,
    copied: number,
  ): number {
    if (copied + chunk.byteLength > room) throw this.overflow(key, room);
    target.set(chunk, offset + copied);
    return copied + chunk.byteLength;
  }

  private overflow(key: string, room: number): StorageUnavailableError {
    return new StorageUnavailableError(
      `S3 sent more than the ${room} bytes asked for of ${key}; retry the read`,
      { details: { key, room } },
    );
  }

  /** A body shorter than its Content-Length is a cut connection, not a shorter object. */
  private filled(
    key: string,
    out: GetObjectCommandOutput,
    announced: number | undefined,
    copied: number,
  ): ReadIntoResult {
    if (announced !== undefined && copied !== announced) {
      throw new StorageUnavailableError(
        `S3 announced ${announced} bytes of ${key} but sent ${copied}; retry the read`,
        { details: { key, announced, copied } },
      );
    }
    return { etag: out.ETag ?? '', copied, size: sizeOf(out, copied) };
  }

  /** the body, refused as soon as its announced length or the bytes received pass `maxBytes` */
  private async readCapped(
    out: GetObjectCommandOutput,
    key: string,
    maxBytes: number,
  ): Promise<Uint8Array> {
    const body = out.Body;
    if (out.ContentLength !== undefined && out.ContentLength > maxBytes) {
      destroyBody(body);
      throw new ObjectTooLargeError(key, maxBytes);
    }
    if (!isAsyncIterable(body)) {
      const bytes = await this.readBody(out, key);
      if (bytes.byteLength > maxBytes) throw new ObjectTooLargeError(key, maxBytes);
      return bytes;
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
        `reading the body of ${key} from bucket ${this.bucket} failed after ${size} bytes: ${errorMessage(err)}; retry the read`,
        { cause: err, details: { key, copied: size } },
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

  private async readBody(out: GetObjectCommandOutput, key: string): Promise<Uint8Array> {
    if (out.Body === undefined) return new Uint8Array(0);
    try {
      return await out.Body.transformToByteArray();
    } catch (err) {
      throw new StorageUnavailableError(
        `reading the body of ${key} from bucket ${this.bucket} failed: ${errorMessage(err)}`,
        { cause: err, details: { key } },
      );
    }
  }

  private translate(err: unknown, operation: string, key: string): Error {
    const status = httpStatus(err);
    const name = err instanceof Error ? err.name : undefined;
    if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
      return new ObjectNotFoundError(key, { cause: err });
    }
    // 409 ConditionalRequestConflict: AWS lost a concurrent conditional write; same remedy as 412.
    if (status === 412 || status === 409 || name === 'PreconditionFailed') {
      return new PreconditionFailedError(key, { cause: err });
    }
    const reason = status === undefined ? errorMessage(err) : `HTTP ${status} ${name ?? ''}`.trim();
    return new StorageUnavailableError(
      `S3 ${operation} ${key} in bucket ${this.bucket} failed (${reason}); the model store is unreachable or refused the call, retry later`,
      { cause: err, details: { key, bucket: this.bucket, operation, status } },
    );
  }
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const metadata = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  return typeof metadata?.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

type NodeBody = AsyncIterable<Uint8Array> & { destroy?: () => void };

const destroyBody = (body: unknown): void => {
  if (isAsyncIterable(body)) body.destroy?.();
};

const isAsyncIterable = (body: unknown): body is NodeBody =>
  typeof body === 'object' && body !== null && Symbol.asyncIterator in body;

function sizeOf(out: GetObjectCommandOutput, fallback: number): number {
  const total = out.ContentRange?.match(/\/(\d+)$/)?.[1];
  return total === undefined ? fallback : Number(total);
}

/** S3 orders keys by UTF-8 bytes; plain `<` on UTF-16 strings differs outside the BMP. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
