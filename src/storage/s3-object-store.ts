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
import {
  collectBody,
  compareKeys,
  copyBody,
  destroyBody,
  isAsyncIterable,
  quoteEtag,
  rangedRead,
  roomFor,
  sizeOf,
  translateS3Error,
} from './s3-common.ts';

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
      size: sizeOf(out.ContentRange, body.byteLength),
      ...(out.LastModified === undefined ? {} : { lastModified: out.LastModified }),
      metadata: out.Metadata ?? {},
      ...(out.ContentType === undefined ? {} : { contentType: out.ContentType }),
      body,
    };
  }

  /** Parallel ranged GETs of a large object, each part pinned to the ETag the HEAD saw. */
  getLarge(key: string, options: GetLargeOptions = {}): Promise<StoredObject> {
    return rangedRead(this, key, options);
  }

  /** Copies each chunk of the response as it arrives into `target` (see `copyBody`). */
  async readInto(
    key: string,
    target: Uint8Array,
    options: ReadIntoOptions = {},
  ): Promise<ReadIntoResult> {
    const { range } = options;
    roomFor(key, target, options);
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
    const where = { key, bucket: this.bucket };
    let copied: number;
    if (isAsyncIterable(body)) {
      copied = await copyBody(where, body, out.ContentLength, target, options);
    } else {
      const bytes = await this.readBody(out, key);
      copied = await copyBody(where, chunksOf(bytes), out.ContentLength, target, options);
    }
    return { etag: out.ETag ?? '', copied, size: sizeOf(out.ContentRange, copied) };
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

  /** the body under a byte cap (see `collectBody`) */
  private readCapped(out: GetObjectCommandOutput, key: string, maxBytes: number) {
    if (!isAsyncIterable(out.Body)) {
      return this.readBody(out, key).then((bytes) => {
        if (bytes.byteLength > maxBytes) throw new ObjectTooLargeError(key, maxBytes);
        return bytes;
      });
    }
    return collectBody({ key, bucket: this.bucket }, out.Body, out.ContentLength, maxBytes);
  }

  private translate(err: unknown, operation: string, key: string): Error {
    const code = err instanceof Error ? err.name : undefined;
    return translateS3Error(
      { status: httpStatus(err), code, cause: err },
      operation,
      key,
      this.bucket,
    );
  }
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const metadata = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  return typeof metadata?.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

/** a body the SDK handed over whole, as the one chunk `copyBody` reads */
async function* chunksOf(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
