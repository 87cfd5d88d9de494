import { createRequire } from 'node:module';

/**
 * s3rver 3.7.1 seals ListObjectsV2 continuation tokens with single DES, which the OpenSSL 3 of
 * Node 17+ refuses: every listing past 1000 keys fails with 500 InternalError. This wraps its
 * list controller (after authentication has run on the untouched request) with a token of our
 * own, so pagination works as on AWS; the rest of the listing stays s3rver's.
 */

import { compareKeys, type ListResult } from './listing.ts';

interface ListStore {
  listObjects(bucket: string, options: unknown): Promise<ListResult>;
}

interface ListContext {
  query: Record<string, string | string[] | undefined>;
  params: { bucket: string };
  store: ListStore;
  body: unknown;
}

type Controller = (ctx: ListContext) => Promise<void>;

const require = createRequire(import.meta.url);
const bucketController = require('s3rver/lib/controllers/bucket.js') as { getBucket: Controller };
const S3Error = require('s3rver/lib/models/error.js') as new (
  code: string,
  message: string,
  detail?: Record<string, string>,
) => Error;

const PATCHED = Symbol.for('maas.s3rver.listPagination');
const TOKEN_PREFIX = 'maas1:';

const encodeToken = (bucket: string, key: string): string =>
  Buffer.from(`${TOKEN_PREFIX}${bucket}/${key}`).toString('base64url');

function decodeToken(bucket: string, token: string): string {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const expected = `${TOKEN_PREFIX}${bucket}/`;
  if (!text.startsWith(expected)) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      ArgumentName: 'continuation-token',
    });
  }
  return text.slice(expected.length);
}

export function installListPagination(): void {
  const controller = bucketController as { getBucket: Controller; [PATCHED]?: true };
  if (controller[PATCHED]) return;
  const original = controller.getBucket;
  controller.getBucket = async (ctx) => {
    if (ctx.query['list-type'] !== '2') return original(ctx);
    const bucket = ctx.params.bucket;
    const token = ctx.query['continuation-token'];
    if (typeof token === 'string' && token !== '') {
      const { 'continuation-token': _consumed, ...rest } = ctx.query;
      ctx.query = { ...rest, 'start-after': decodeToken(bucket, token) };
    }
    const store = ctx.store;
    let last: string | undefined;
    ctx.store = {
      async listObjects(name, options) {
        const result = await store.listObjects(name, options);
        // The page ends with its greatest entry, a key or a common prefix (listing.ts).
        const entries = [result.objects.at(-1)?.key, result.commonPrefixes.at(-1)].filter(
          (entry): entry is string => entry !== undefined,
        );
        last = result.isTruncated ? entries.sort(compareKeys).at(-1) : undefined;
        return { ...result, isTruncated: false };
      },
    };
    await original(ctx);
    const listing = (ctx.body as { ListBucketResult?: Record<string, unknown> } | undefined)
      ?.ListBucketResult;
    if (listing === undefined) return;
    if (typeof token === 'string' && token !== '') {
      listing.StartAfter = undefined;
      listing.ContinuationToken = token;
    }
    if (last !== undefined) {
      listing.IsTruncated = true;
      listing.NextContinuationToken = encodeToken(bucket, last);
    }
  };
  controller[PATCHED] = true;
}
