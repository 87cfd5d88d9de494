import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import { isCreateOnlyKey, REGISTRY_PREFIX } from '../../src/registry/keys.ts';
import { KeyLock } from './key-lock.ts';
import { isValidBucketName, keyAdvice, unsafeKeyReason } from './safe-paths.ts';

/** The current ETag of an object (bare, no quotes), `undefined` when there is none. */
export type EtagLookup = (bucket: string, key: string) => Promise<string | undefined>;

/** s3rver's request listener (`app.callback()` of its Koa app) */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface ConditionalServerOptions {
  /** serves every request once its checks pass */
  app: RequestListener;
  currentEtag: EtagLookup;
  /** told while a CompleteMultipartUpload for bucket/key is in flight */
  onCompleting?: (target: string, active: boolean) => void;
  /**
   * Refuse what the deployed bucket policy denies: an unconditional write under `registry/`,
   * and a version object or history record written without `If-None-Match`. @default true
   */
  registryPolicy?: boolean;
}

interface Target {
  bucket: string;
  key: string;
}

interface S3ErrorReply {
  status: number;
  code: string;
  message: string;
  extra: Record<string, string>;
}

/**
 * The local S3's HTTP server: s3rver's request listener, called in-process, behind what s3rver
 * lacks: conditional writes as AWS S3 does them.
 * `If-None-Match: *` and `If-Match: <etag>` on PutObject, CopyObject and CompleteMultipartUpload
 * are checked against the stored object and answered with AWS's 412 PreconditionFailed (404
 * NoSuchKey for If-Match on a missing key). Every write to a key runs alone, check included, so
 * of two racing conditional writes exactly one wins, and no read sees a write half done: a key's
 * lock is held until its answer is sent. s3rver reads the request itself, so SigV4 is checked as
 * before. Only path-style requests are understood (the clients of a local endpoint use them).
 * Calling s3rver in-process rather than proxying to its port spares every byte a second trip
 * through a socket; a 40 MB read took twice as long through the proxy this replaced.
 */
export function createConditionalServer(options: ConditionalServerOptions): http.Server {
  const locks = new KeyLock();

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    expectsContinue: boolean,
  ): Promise<void> => {
    const unsafe = unsafeRequest(req);
    if (unsafe !== undefined) {
      await refuse(req, res, unsafe, expectsContinue);
      return;
    }
    const target = parseTarget(req.url ?? '/');
    if (target === undefined) {
      if (expectsContinue) res.writeContinue();
      await answer(options.app, req, res);
      return;
    }
    const lockKey = `${target.bucket}/${target.key}`;
    const write = objectWrite(req);
    if (write === undefined) {
      await locks.read(lockKey, async () => {
        if (expectsContinue) res.writeContinue();
        await answer(options.app, req, res);
      });
      return;
    }
    await locks.write(lockKey, async () => {
      const refusal =
        (options.registryPolicy === false
          ? undefined
          : registryPolicyRefusal(req, write, target)) ??
        (await checkPreconditions(req, target, options.currentEtag));
      if (refusal !== undefined) {
        await refuse(req, res, refusal, expectsContinue);
        return;
      }
      if (expectsContinue) res.writeContinue();
      const completing = write === 'complete-multipart';
      if (completing) options.onCompleting?.(lockKey, true);
      try {
        await answer(options.app, req, res);
      } finally {
        if (completing) options.onCompleting?.(lockKey, false);
      }
    });
  };

  const server = http.createServer();
  const serve = (expectsContinue: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, expectsContinue).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy(err instanceof Error ? err : undefined);
        return;
      }
      sendError(res, {
        status: 503,
        code: 'ServiceUnavailable',
        message: `The local S3 could not serve the request: ${err instanceof Error ? err.message : String(err)}`,
        extra: {},
      });
    });
  };
  server.on('request', serve(false));
  // Answering before `100 Continue` lets a client that asked for it skip sending a refused body.
  server.on('checkContinue', serve(true));
  return server;
}

/**
 * Keys and bucket names a file path cannot hold (see safe-paths.ts), wherever the request names
 * one: its path, its copy source, its multipart upload id.
 */
function unsafeRequest(req: IncomingMessage): S3ErrorReply | undefined {
  const [rawPath = '', rawQuery = ''] = (req.url ?? '/').split('?', 2);
  const match = /^\/([^/]+)(?:\/(.*))?$/s.exec(rawPath);
  if (match?.[1] === undefined) return undefined;
  let bucket: string;
  let key: string | undefined;
  try {
    bucket = decodeURIComponent(match[1]);
    key = match[2] === undefined || match[2] === '' ? undefined : decodeURIComponent(match[2]);
  } catch {
    return invalidKey('is not valid percent-encoding');
  }
  if (!isValidBucketName(bucket)) return invalidBucket(bucket);
  const keyReason = key === undefined ? undefined : unsafeKeyReason(key);
  if (keyReason !== undefined) return invalidKey(keyReason);

  const copySource = headerValue(req, 'x-amz-copy-source');
  if (copySource !== undefined) {
    let source: string;
    try {
      source = decodeURIComponent(copySource.split('?', 1)[0] ?? '').replace(/^\//, '');
    } catch {
      return invalidKey('in x-amz-copy-source is not valid percent-encoding');
    }
    const slash = source.indexOf('/');
    const sourceBucket = slash < 0 ? source : source.slice(0, slash);
    if (!isValidBucketName(sourceBucket)) return invalidBucket(sourceBucket);
    const sourceReason = unsafeKeyReason(slash < 0 ? '' : source.slice(slash + 1));
    if (sourceReason !== undefined) return invalidKey(`in x-amz-copy-source ${sourceReason}`);
  }

  const uploadId = new URLSearchParams(rawQuery).get('uploadId');
  if (uploadId !== null && !/^[0-9a-f]{32}$/.test(uploadId)) {
    return {
      status: 404,
      code: 'NoSuchUpload',
      message:
        'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
      extra: { UploadId: uploadId },
    };
  }
  return undefined;
}

const invalidKey = (reason: string): S3ErrorReply => ({
  status: 400,
  code: 'InvalidArgument',
  message: `Object key ${reason}: ${keyAdvice}`,
  extra: { ArgumentName: 'key' },
});

const invalidBucket = (bucket: string): S3ErrorReply => ({
  status: 400,
  code: 'InvalidBucketName',
  message: 'The specified bucket is not valid.',
  extra: { BucketName: bucket },
});

/**
 * The bucket policy of the deployed stack (infra/model-bucket.ts, `lockRegistry`), enforced here
 * the way S3 enforces it: the policy is evaluated before the object is looked at, so a refused
 * write is a 403 whether or not the key exists. UploadPart and CreateMultipartUpload are never
 * checked (they take no conditional header; AWS exempts them through
 * `s3:ObjectCreationOperation`), their CompleteMultipartUpload is. A CopyObject into the
 * registry fails as AWS documents for a prefix under enforced conditional writes: 403 without a
 * conditional header, 501 with one.
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html
 */
function registryPolicyRefusal(
  req: IncomingMessage,
  write: ObjectWrite,
  target: Target,
): S3ErrorReply | undefined {
  if (write === 'delete' || !target.key.startsWith(REGISTRY_PREFIX)) return undefined;
  const ifNoneMatch = headerValue(req, 'if-none-match');
  const ifMatch = headerValue(req, 'if-match');
  if (headerValue(req, 'x-amz-copy-source') !== undefined) {
    if (ifNoneMatch === undefined && ifMatch === undefined) {
      return accessDenied('CopyObject into registry/ without If-None-Match or If-Match');
    }
    return {
      status: 501,
      code: 'NotImplemented',
      message:
        'A header you provided asks for what this server refuses to do: CopyObject with a conditional header, under a prefix whose bucket policy enforces conditional writes',
      extra: {},
    };
  }
  if (ifNoneMatch === undefined && ifMatch === undefined) {
    return accessDenied(
      'writes under registry/ must be conditional: If-None-Match: * to create, If-Match: <etag> to replace aliases.json',
    );
  }
  if (ifNoneMatch === undefined && isCreateOnlyKey(target.key)) {
    return accessDenied(
      "a version's objects and history records are created once, with If-None-Match: *, never replaced",
    );
  }
  return undefined;
}

const accessDenied = (why: string): S3ErrorReply => ({
  status: 403,
  code: 'AccessDenied',
  message: `Access Denied: explicit deny in the bucket policy (${why}); see docs/security.md`,
  extra: {},
});

function parseTarget(url: string): Target | undefined {
  const path = url.split('?', 1)[0] ?? '';
  const match = /^\/([^/]+)\/(.+)$/.exec(path);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  try {
    return { bucket: decodeURIComponent(match[1]), key: decodeURIComponent(match[2]) };
  } catch {
    return undefined;
  }
}

type ObjectWrite = 'put' | 'complete-multipart' | 'delete';

/** Requests that replace or remove the object at the key (parts and subresources do not). */
function objectWrite(req: IncomingMessage): ObjectWrite | undefined {
  const query = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
  // `x-id` (SDK v3 operation tag) and `X-Amz-*` (presigned URLs) do not name a subresource.
  const subresource = [...query.keys()].some((name) => {
    const lower = name.toLowerCase();
    return lower !== 'x-id' && !lower.startsWith('x-amz-');
  });
  if (req.method === 'PUT' && !subresource) return 'put';
  if (req.method === 'POST' && query.has('uploadId')) return 'complete-multipart';
  if (req.method === 'DELETE' && !subresource) return 'delete';
  return undefined;
}

async function checkPreconditions(
  req: IncomingMessage,
  target: Target,
  currentEtag: EtagLookup,
): Promise<S3ErrorReply | undefined> {
  const ifNoneMatch = headerValue(req, 'if-none-match');
  const ifMatch = headerValue(req, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (req.method === 'DELETE') return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    return {
      status: 501,
      code: 'NotImplemented',
      // AWS answers 501 NotImplemented here too: S3 supports only `*` on a conditional write
      message:
        'If-None-Match on a write accepts only "*" (create only if absent); to update an object only while it is unchanged, send If-Match: <etag>',
      extra: { Header: 'If-None-Match' },
    };
  }
  const current = await currentEtag(target.bucket, target.key);
  if (ifNoneMatch !== undefined && current !== undefined) {
    return preconditionFailed('If-None-Match');
  }
  if (ifMatch !== undefined) {
    if (current === undefined) {
      return {
        status: 404,
        code: 'NoSuchKey',
        message: 'The specified key does not exist.',
        extra: { Key: target.key },
      };
    }
    const wanted = ifMatch.split(',').map((tag) => bareEtag(tag.trim()));
    if (!wanted.includes('*') && !wanted.includes(current)) return preconditionFailed('If-Match');
  }
  return undefined;
}

const preconditionFailed = (condition: string): S3ErrorReply => ({
  status: 412,
  code: 'PreconditionFailed',
  message: 'At least one of the pre-conditions you specified did not hold',
  extra: { Condition: condition },
});

export const bareEtag = (etag: string): string => etag.replace(/^W\//, '').replace(/"/g, '');

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

async function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  reply: S3ErrorReply,
  expectsContinue: boolean,
): Promise<void> {
  if (expectsContinue) {
    // The client holds its body until `100 Continue`, which never comes: the connection cannot
    // be reused, since the server would read the next request as the unsent body.
    res.setHeader('connection', 'close');
  } else {
    // Drained before answering: a client still writing a large body would otherwise see a reset
    // instead of the 412.
    req.resume();
    await finished(req);
  }
  sendError(res, reply);
}

function sendError(res: ServerResponse, reply: S3ErrorReply): void {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const extra = Object.entries(reply.extra)
    .map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`)
    .join('');
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${reply.code}</Code><Message>${escapeXml(reply.message)}</Message>${extra}` +
    `<RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`;
  res.writeHead(reply.status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
    'x-amz-id-2': requestId,
  });
  res.end(body);
}

const escapeXml = (text: string): string =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

/** Lets s3rver answer; resolves once the answer is sent (or the client went away). */
async function answer(
  app: RequestListener,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const sent = finished(res).catch(() => undefined);
  await app(req, res);
  await sent;
}
