/**
 * Predict's S3 store: GET, HEAD and LIST signed with the SDK's own SigV4 signer and sent through
 * its Node HTTP handler, without the S3 client. The client's 430 KB of command schemas and
 * middleware are compiled and evaluated at every cold start, and predict only reads (its role may
 * not write). Same errors, conditional reads, byte caps and ranged reads as `S3ObjectStore`.
 */
import { parseXML } from '@aws-sdk/xml-builder';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import type {
  AwsCredentialIdentity,
  AwsCredentialIdentityProvider,
  HttpResponse,
} from '@smithy/types';
import { storageFromEnv } from '../config/index.ts';
import { errorMessage } from '../errors/index.ts';
import {
  type GetLargeOptions,
  type GetOptions,
  type ListOptions,
  normalizeEtag,
  type ObjectStore,
  PreconditionFailedError,
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
  type NodeBody,
  quoteEtag,
  rangedRead,
  roomFor,
  sizeOf,
  translateS3Error,
} from './s3-common.ts';

export interface S3ReadStoreOptions {
  bucket: string;
  /** S3-compatible endpoint, addressed path-style; defaults to `AWS_ENDPOINT_URL_S3`, then AWS */
  endpoint?: string;
  /** defaults to `AWS_REGION`, `AWS_DEFAULT_REGION`, then us-east-1 */
  region?: string;
  /** defaults to the environment's `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, which Lambda sets */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** attempts per request on a network failure, 5xx or throttling. @default 3 */
  maxAttempts?: number;
  /** time allowed to open a connection, ms. @default 3000 */
  connectionTimeoutMs?: number;
  /**
   * a socket idle for this long fails the request, ms (not a cap on large transfers). @default
   * 10000: predict's invocation lasts 15 s on AWS, and a stalled body must fail within it
   */
  socketTimeoutMs?: number;
  /**
   * time for S3 to answer a call (its response headers), all attempts and backoff included, ms;
   * a store that accepts connections and never answers fails the call after it. @default 10000
   */
  answerTimeoutMs?: number;
  /** keys per LIST page (`max-keys`). @default S3's own, 1,000 */
  listPageSize?: number;
  /** sends the signed requests; the timeouts above apply to the default, the SDK's Node handler */
  requestHandler?: Pick<NodeHttpHandler, 'handle'>;
  /**
   * requests in flight at once, their responses included until read or dropped; more wait here.
   * @default 50, the sockets of the SDK's Node handler
   */
  maxConcurrency?: number;
}

/** Predict writes nothing: its role may not, and a write reaching this store is a bug. */
export class ReadOnlyStoreError extends Error {
  constructor(operation: string, key: string) {
    super(`${operation} ${key}: predict's S3 store only reads the registry`);
    this.name = 'ReadOnlyStoreError';
  }
}

/** Lambda's credentials: the environment variables its runtime sets for the function's role. */
const fromEnvironment: AwsCredentialIdentityProvider = async () => {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new StorageUnavailableError(
      'no AWS credentials: predict reads S3 with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), which Lambda sets for the function role; set them to run predict elsewhere',
    );
  }
  const sessionToken = process.env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
};

/** S3's key encoding: every byte but unreserved characters and `/` percent-encoded. */
const encodeKey = (key: string): string =>
  key
    .split('/')
    .map((part) =>
      encodeURIComponent(part).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join('/');

const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** the sockets the SDK's Node handler opens per host */
const HANDLER_SOCKETS = 50;
const MAX_BACKOFF_MS = 20_000;
const ERROR_BODY_BYTES = 64 * 1024;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: NodeBody | undefined;
}

/** a failure S3 answered, with its status and the `<Code>` of its error document */
class S3Answer extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(`S3 answered HTTP ${status}${code === undefined ? '' : ` ${code}`}`);
    this.name = code ?? `Http${status}`;
  }
}

export class S3ReadStore implements ObjectStore {
  readonly bucket: string;
  private readonly signer: SignatureV4;
  private readonly http: Pick<NodeHttpHandler, 'handle'>;
  private readonly origin: { protocol: string; hostname: string; port?: number };
  /** path before the key: `/bucket/` path-style, `/` on the bucket's own host */
  private readonly base: string;
  private readonly maxAttempts: number;
  private readonly listPageSize: number | undefined;
  private readonly slots: Slots;
  private readonly answerTimeoutMs: number;

  constructor(options: S3ReadStoreOptions) {
    this.bucket = options.bucket;
    const fromEnv =
      options.endpoint === undefined || options.region === undefined ? storageFromEnv() : undefined;
    const endpoint = options.endpoint ?? fromEnv?.endpoint;
    const region = options.region ?? fromEnv?.region ?? 'us-east-1';
    if (endpoint !== undefined) {
      const url = new URL(endpoint);
      this.origin = {
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port === '' ? {} : { port: Number(url.port) }),
      };
      this.base = `${url.pathname.replace(/\/+$/, '')}/${encodeKey(this.bucket)}/`;
    } else {
      // Virtual-hosted, as the SDK addresses DNS-safe buckets; a dotted name breaks the
      // wildcard certificate, so it goes path-style on the regional endpoint instead.
      const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
      const virtual = !this.bucket.includes('.');
      this.origin = {
        protocol: 'https:',
        hostname: virtual ? `${this.bucket}.s3.${region}.${domain}` : `s3.${region}.${domain}`,
      };
      this.base = virtual ? '/' : `/${encodeKey(this.bucket)}/`;
    }
    const credentials = options.credentials ?? fromEnvironment;
    this.signer = new SignatureV4({
      service: 's3',
      region,
      credentials,
      sha256: Sha256,
      // S3 signs the path as sent: keys are encoded once, here, not again by the signer
      uriEscapePath: false,
      applyChecksum: true,
    });
    this.http =
      options.requestHandler ??
      new NodeHttpHandler({
        connectionTimeout: options.connectionTimeoutMs ?? 3000,
        socketTimeout: options.socketTimeoutMs ?? 10_000,
      });
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.listPageSize = options.listPageSize;
    this.answerTimeoutMs = Math.max(1, options.answerTimeoutMs ?? 10_000);
    this.slots = new Slots(Math.max(1, options.maxConcurrency ?? HANDLER_SOCKETS));
  }

  async head(key: string): Promise<StoredObjectHead> {
    const answer = await this.send('HEAD', key, { path: this.base + encodeKey(key) });
    destroyBody(answer.body);
    return headOf(key, answer.headers, Number(answer.headers['content-length'] ?? 0));
  }

  async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    const answer = await this.send('GET', key, {
      path: this.base + encodeKey(key),
      headers: {
        ...(options.ifNoneMatch === undefined
          ? {}
          : { 'if-none-match': quoteEtag(options.ifNoneMatch) }),
        ...(options.ifMatch === undefined ? {} : { 'if-match': quoteEtag(options.ifMatch) }),
        ...(options.range === undefined
          ? {}
          : { range: `bytes=${options.range.start}-${options.range.end}` }),
      },
      signal: options.signal,
      notModified: options.ifNoneMatch !== undefined,
    });
    if (answer.status === 304) {
      destroyBody(answer.body);
      return undefined;
    }
    this.assertEtag(key, answer, options.ifMatch);
    const body =
      answer.body === undefined
        ? new Uint8Array(0)
        : await collectBody(
            { key, bucket: this.bucket },
            answer.body,
            lengthOf(answer),
            options.maxBytes,
          );
    return { ...headOf(key, answer.headers, body.byteLength), body };
  }

  getLarge(key: string, options: GetLargeOptions = {}): Promise<StoredObject> {
    return rangedRead(this, key, options);
  }

  async readInto(
    key: string,
    target: Uint8Array,
    options: ReadIntoOptions = {},
  ): Promise<ReadIntoResult> {
    roomFor(key, target, options);
    const { range } = options;
    const answer = await this.send('GET', key, {
      path: this.base + encodeKey(key),
      headers: {
        ...(range === undefined ? {} : { range: `bytes=${range.start}-${range.end}` }),
        ...(options.ifMatch === undefined ? {} : { 'if-match': quoteEtag(options.ifMatch) }),
      },
      signal: options.signal,
    });
    this.assertEtag(key, answer, options.ifMatch);
    const copied =
      answer.body === undefined
        ? 0
        : await copyBody(
            { key, bucket: this.bucket },
            answer.body,
            lengthOf(answer),
            target,
            options,
          );
    return {
      etag: answer.headers.etag ?? '',
      copied,
      size: sizeOf(answer.headers['content-range'], copied),
    };
  }

  async list(
    prefix: string,
    options: ListOptions = {},
  ): Promise<{ keys: StoredObjectHead[]; prefixes: string[] }> {
    const keys: StoredObjectHead[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { 'list-type': '2', prefix };
      if (options.delimiter !== undefined) query.delimiter = options.delimiter;
      if (this.listPageSize !== undefined) query['max-keys'] = String(this.listPageSize);
      if (token !== undefined) query['continuation-token'] = token;
      else if (options.startAfter !== undefined) query['start-after'] = options.startAfter;
      const answer = await this.send('LIST', prefix, { path: this.base, query });
      const page = await this.listPage(prefix, answer);
      keys.push(...page.keys);
      prefixes.push(...page.prefixes);
      token = page.next;
    } while (token !== undefined);
    keys.sort((a, b) => compareKeys(a.key, b.key));
    prefixes.sort(compareKeys);
    return { keys, prefixes };
  }

  put(key: string, _body?: Uint8Array | string): Promise<{ etag: string }> {
    return Promise.reject(new ReadOnlyStoreError('PUT', key));
  }

  delete(key: string): Promise<void> {
    return Promise.reject(new ReadOnlyStoreError('DELETE', key));
  }

  /** a store that ignores If-Match must not hand back another object's bytes */
  private assertEtag(key: string, answer: Answer, ifMatch: string | undefined): void {
    const etag = answer.headers.etag;
    if (
      ifMatch !== undefined &&
      etag !== undefined &&
      normalizeEtag(etag) !== normalizeEtag(ifMatch)
    ) {
      destroyBody(answer.body);
      throw new PreconditionFailedError(key);
    }
  }

  private async listPage(
    prefix: string,
    answer: Answer,
  ): Promise<{ keys: StoredObjectHead[]; prefixes: string[]; next: string | undefined }> {
    const where = { key: prefix, bucket: this.bucket };
    const xml =
      answer.body === undefined
        ? new Uint8Array(0)
        : await collectBody(where, answer.body, lengthOf(answer));
    let result: ListBucketResult | undefined;
    try {
      result = (parseXML(new TextDecoder().decode(xml)) as { ListBucketResult?: ListBucketResult })
        .ListBucketResult;
    } catch (err) {
      throw new StorageUnavailableError(
        `S3 LIST ${prefix} in bucket ${this.bucket} answered XML that does not parse (${errorMessage(err)}); retry later`,
        { cause: err, details: { prefix } },
      );
    }
    const keys = many(result?.Contents).flatMap((item): StoredObjectHead[] =>
      item.Key === undefined
        ? []
        : [
            {
              key: item.Key,
              etag: item.ETag ?? '',
              size: Number(item.Size ?? 0),
              ...(item.LastModified === undefined
                ? {}
                : { lastModified: new Date(item.LastModified) }),
              metadata: {},
            },
          ],
    );
    const prefixes = many(result?.CommonPrefixes).flatMap((p) =>
      p.Prefix === undefined ? [] : [p.Prefix],
    );
    const next = result?.IsTruncated === 'true' ? result.NextContinuationToken : undefined;
    return { keys, prefixes, next };
  }

  /**
   * Signs and sends one request, retrying network failures, 5xx and throttling with jittered
   * exponential backoff, as the SDK's standard strategy does, all within `answerTimeoutMs`.
   * Resolves with a 2xx (or a 304 when `notModified`); every other answer becomes the store's
   * typed error.
   */
  private async send(
    operation: 'GET' | 'HEAD' | 'LIST',
    key: string,
    request: {
      path: string;
      query?: Record<string, string>;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
      notModified?: boolean;
    },
  ): Promise<Answer> {
    const method = operation === 'LIST' ? 'GET' : operation;
    const deadline = Date.now() + this.answerTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      let failure: { status: number | undefined; code: string | undefined; cause: unknown };
      // A store that accepts the connection and never answers would hold the call for the idle
      // time-out of each attempt (3 × 30 s with the SDK's settings), past predict's invocation.
      const stall = new AbortController();
      const timer = setTimeout(
        () => stall.abort(new StalledError(this.answerTimeoutMs)),
        Math.max(0, deadline - Date.now()),
      );
      try {
        const signal =
          request.signal === undefined
            ? stall.signal
            : AbortSignal.any([request.signal, stall.signal]);
        const answer = await this.exchange(method, { ...request, signal });
        if (answer.status < 300 || (answer.status === 304 && request.notModified === true)) {
          return answer;
        }
        const code = await errorCode(answer);
        failure = { status: answer.status, code, cause: new S3Answer(answer.status, code) };
      } catch (err) {
        if (err instanceof StorageUnavailableError) throw err;
        const cause = stall.signal.aborted ? stall.signal.reason : err;
        failure = { status: undefined, code: undefined, cause };
      } finally {
        clearTimeout(timer);
      }
      const backoff = Math.random() * Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt);
      const retryable =
        request.signal?.aborted !== true &&
        !stall.signal.aborted &&
        Date.now() + backoff < deadline &&
        (failure.status === undefined || RETRYABLE_STATUS.has(failure.status));
      if (!retryable || attempt >= this.maxAttempts) {
        throw translateS3Error(failure, operation, key, this.bucket);
      }
      await new Promise((resolve) => setTimeout(resolve, backoff));
    }
  }

  private async exchange(
    method: string,
    request: {
      path: string;
      query?: Record<string, string>;
      headers?: Record<string, string>;
      signal?: AbortSignal | undefined;
    },
  ): Promise<Answer> {
    const { hostname, port } = this.origin;
    const unsigned = new HttpRequest({
      method,
      ...this.origin,
      path: request.path,
      query: request.query ?? {},
      headers: { ...request.headers, host: port === undefined ? hostname : `${hostname}:${port}` },
    });
    const signed = (await this.signer.sign(unsigned)) as HttpRequest;
    // A request queued in the handler's agent for a socket spends its connect time-out waiting
    // there: past 50 at once (the Triton index over 1,000 models) a store that is up answered
    // "did not establish a connection". Requests beyond the sockets wait here instead, and a slot
    // is held until its response has been read or dropped, which is when its socket is free.
    const release = await this.slots.take();
    try {
      const { response } = await this.http.handle(
        signed,
        request.signal === undefined ? {} : { abortSignal: request.signal as never },
      );
      const answer = answerOf(response);
      releaseAfter(response.body, release);
      return answer;
    } catch (err) {
      release();
      throw err;
    }
  }
}

/** S3 accepted the call and did not answer it in time */
class StalledError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** A counting semaphore: `take` resolves with the function that gives the slot back (once). */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async take(): Promise<() => void> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next === undefined) this.free += 1;
      else next();
    };
  }
}

/** calls `release` once the response body has ended or was destroyed (at once without a stream) */
const releaseAfter = (body: unknown, release: () => void): void => {
  const stream = body as { once?: unknown; closed?: boolean; destroyed?: boolean } | undefined;
  if (typeof stream?.once !== 'function' || stream.closed === true || stream.destroyed === true) {
    release();
    return;
  }
  (stream as { once(event: 'close', listener: () => void): void }).once('close', release);
};

interface ListBucketResult {
  Contents?: ListEntry | ListEntry[];
  CommonPrefixes?: { Prefix?: string } | { Prefix?: string }[];
  IsTruncated?: string;
  NextContinuationToken?: string;
}

interface ListEntry {
  Key?: string;
  ETag?: string;
  Size?: string;
  LastModified?: string;
}

/** the XML parser gives one element as an object and several as an array */
const many = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

const answerOf = (response: HttpResponse): Answer => {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) headers[name.toLowerCase()] = value;
  const body = isAsyncIterable(response.body) ? response.body : undefined;
  return { status: response.statusCode, headers, body };
};

const lengthOf = (answer: Answer): number | undefined => {
  const length = answer.headers['content-length'];
  return length === undefined ? undefined : Number(length);
};

const headOf = (
  key: string,
  headers: Record<string, string>,
  received: number,
): StoredObjectHead => {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = value;
  }
  const modified = headers['last-modified'];
  const contentType = headers['content-type'];
  return {
    key,
    etag: headers.etag ?? '',
    size: sizeOf(headers['content-range'], received),
    ...(modified === undefined ? {} : { lastModified: new Date(modified) }),
    metadata,
    ...(contentType === undefined ? {} : { contentType }),
  };
};

/** the `<Code>` of an S3 error document (read up to 64 KB), which also frees the connection */
const errorCode = async (answer: Answer): Promise<string | undefined> => {
  if (answer.body === undefined) return undefined;
  try {
    const bytes = await collectBody(
      { key: '', bucket: '' },
      answer.body,
      undefined,
      ERROR_BODY_BYTES,
    );
    const code = (parseXML(new TextDecoder().decode(bytes)) as { Error?: { Code?: unknown } }).Error
      ?.Code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
};
