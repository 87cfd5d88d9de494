import { MaasError } from '../errors/index.ts';

/**
 * The small object-store interface the core talks to. The S3 implementation is the only one in
 * production and in tests (against the local S3); the interface exists so the core never imports
 * the AWS SDK directly.
 */
export interface StoredObjectHead {
  key: string;
  etag: string;
  size: number;
  lastModified?: Date;
  /** user metadata without the `x-amz-meta-` prefix, keys lower-case */
  metadata: Record<string, string>;
  contentType?: string;
}

export interface StoredObject extends StoredObjectHead {
  body: Uint8Array;
}

export interface GetOptions {
  /** conditional GET: resolves to `undefined` when the object still has this ETag (304) */
  ifNoneMatch?: string;
  /** the object must still have this ETag (the one a HEAD sized): PreconditionFailedError otherwise */
  ifMatch?: string;
  /** stops reading past this many bytes with ObjectTooLargeError, before holding them */
  maxBytes?: number;
  /** inclusive byte range */
  range?: { start: number; end: number };
  signal?: AbortSignal;
}

export interface GetLargeOptions extends Pick<GetOptions, 'ifMatch' | 'maxBytes'> {
  /** bytes per ranged GET */
  partSize?: number;
  /** ranged GETs in flight at once */
  concurrency?: number;
  signal?: AbortSignal;
  /** told after each chunk of any part is copied, with that chunk's size */
  onChunk?: (bytes: number) => void;
}

export interface ReadIntoOptions {
  /** inclusive byte range of the object; the whole object when absent */
  range?: { start: number; end: number };
  /** where in `target` the first byte goes. @default 0 */
  offset?: number;
  /** read only while the object has this ETag (PreconditionFailedError once it was replaced) */
  ifMatch?: string;
  signal?: AbortSignal;
  /** told after each chunk is copied, with the bytes copied so far (to hash them as they arrive) */
  onChunk?: (copied: number) => void;
}

export interface ReadIntoResult {
  etag: string;
  /** bytes copied into the target */
  copied: number;
  /** size of the whole object (a range's Content-Range total) */
  size: number;
}

export interface ListOptions {
  /** group keys by this separator and return the groups as `prefixes` */
  delimiter?: string;
  /** only keys after this one, in S3's order */
  startAfter?: string;
}

export interface PutOptions {
  /** `'*'`: create only; fails with PreconditionFailedError when the key exists */
  ifNoneMatch?: '*';
  /** update only if the current ETag is this one; PreconditionFailedError otherwise */
  ifMatch?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

export interface ObjectStore {
  readonly bucket: string;
  head(key: string): Promise<StoredObjectHead>;
  /** `undefined` only for a conditional GET whose ETag still matches */
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }>;
  /** keys under a prefix, in lexicographic order; `delimiter` returns common prefixes instead */
  list(
    prefix: string,
    options?: ListOptions,
  ): Promise<{ keys: StoredObjectHead[]; prefixes: string[] }>;
  delete(key: string): Promise<void>;
  /** whole-object read by parallel ranged GETs, for large bodies; optional for small stores */
  getLarge?(key: string, options?: GetLargeOptions): Promise<StoredObject>;
  /**
   * Streams an object (or a range of it) straight into `target` at `offset`, with no buffer of its
   * own: for large reads whose size is known, where collecting and joining chunks would cost more
   * than the transfer. A body cut short of its announced length fails with
   * StorageUnavailableError. Optional: callers fall back to `get`.
   */
  readInto?(key: string, target: Uint8Array, options?: ReadIntoOptions): Promise<ReadIntoResult>;
}

export class ObjectNotFoundError extends MaasError {
  constructor(
    readonly key: string,
    options: { cause?: unknown } = {},
  ) {
    super('ObjectNotFound', `no object at ${key}`, { ...options, details: { key } });
  }
}

/** A conditional write lost a race (HTTP 412). Callers re-read and retry. */
export class PreconditionFailedError extends MaasError {
  constructor(
    readonly key: string,
    options: { cause?: unknown } = {},
  ) {
    super('PreconditionFailed', `precondition failed writing ${key}`, {
      ...options,
      details: { key },
    });
  }
}

/** A read stopped at its byte cap (`GetOptions.maxBytes`): the object is larger than expected. */
export class ObjectTooLargeError extends MaasError {
  constructor(
    readonly key: string,
    readonly maxBytes: number,
  ) {
    super('ObjectTooLarge', `${key} is larger than the ${maxBytes} bytes this read allows`, {
      details: { key, maxBytes },
    });
  }
}

/** The store could not be reached or answered 5xx: transient, worth a retry later. */
export class StorageUnavailableError extends MaasError {
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super('StorageUnavailable', message, options);
  }
}

/** An ETag without quotes or the weak prefix: S3 and s3rver quote them, comparisons must not. */
export const normalizeEtag = (etag: string): string => etag.replace(/^W\//, '').replace(/"/g, '');
