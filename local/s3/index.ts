import type { AddressInfo } from 'node:net';
import type { S3EventRecord } from 'aws-lambda';
import S3rver, { type S3rverEvent } from 's3rver';
import { installAtomicWrites } from './atomic-writes.ts';
import { bareEtag, createConditionalServer } from './conditional-writes.ts';
import { objectCreatedRecord } from './events.ts';
import { installLargeReads } from './large-reads.ts';
import { installListPagination } from './list-pagination.ts';
import { installListing } from './listing.ts';
import { installSafePaths } from './safe-paths.ts';

export { encodeEventKey } from './events.ts';

/** s3rver's fixed account: any S3 client pointed at the local S3 signs with these. */
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_S3_REGION = 'us-east-1';

export interface LocalS3Options {
  /** public port; 0 picks a free one. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** where objects live; a restart on the same directory keeps them */
  directory: string;
  /** created when missing. @default 'maas-models' */
  bucket?: string;
  /**
   * Refuse the writes the deployed bucket policy denies (unconditional writes under `registry/`,
   * overwrites of a version's objects), as S3 does. @default true
   */
  registryPolicy?: boolean;
}

export type ObjectCreatedListener = (record: S3EventRecord) => void | Promise<void>;

export interface LocalS3 {
  /** `http://host:port`, for `endpoint` with `forcePathStyle` or `--endpoint-url` */
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  /** every ObjectCreated, shaped as AWS delivers it (URL-encoded key, bare eTag); returns an unsubscribe */
  onObjectCreated(listener: ObjectCreatedListener): () => void;
  close(): Promise<void>;
}

/**
 * An S3-compatible endpoint for the local stack and the tests: s3rver, served in-process by a
 * server that adds AWS's conditional-write semantics, with ObjectCreated notifications as AWS
 * sends them to Lambda.
 */
export async function startLocalS3(options: LocalS3Options): Promise<LocalS3> {
  const host = options.host ?? '127.0.0.1';
  const bucket = options.bucket ?? 'maas-models';
  installSafePaths();
  installListing();
  installListPagination();
  installAtomicWrites();
  installLargeReads();
  // s3rver never listens: its request listener runs inside the conditional-write server
  const s3rver = new S3rver({
    silent: true,
    directory: options.directory,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  await s3rver.configureBuckets();

  const listeners = new Set<ObjectCreatedListener>();
  const completing = new Set<string>();
  const currentEtag = async (bucketName: string, key: string): Promise<string | undefined> => {
    try {
      return bareEtag((await s3rver.store.getMetadata(bucketName, key)).etag);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };

  // One chain keeps notifications in the order the objects were created.
  let delivery = Promise.resolve();
  s3rver.on('event', (event: S3rverEvent) => {
    for (const raw of event.Records) {
      if (!raw.eventName.startsWith('ObjectCreated:')) continue;
      const bucketName = raw.s3.bucket.name;
      const key = raw.s3.object.key;
      // s3rver calls a completed multipart upload `Post`; AWS names it.
      const eventName =
        raw.eventName === 'ObjectCreated:Post' && completing.has(`${bucketName}/${key}`)
          ? 'ObjectCreated:CompleteMultipartUpload'
          : raw.eventName;
      const known =
        raw.s3.object.eTag === undefined || raw.s3.object.size === undefined
          ? undefined
          : { eTag: raw.s3.object.eTag, size: raw.s3.object.size };
      delivery = delivery.then(async () => {
        const stored = known ?? (await storedFacts(s3rver, bucketName, key));
        if (stored === undefined) return;
        const record = objectCreatedRecord({
          bucket: bucketName,
          key,
          eventName,
          sourceIp: raw.requestParameters.sourceIPAddress,
          size: stored.size,
          eTag: bareEtag(stored.eTag),
        });
        // Started in order, not awaited: AWS runs consumers concurrently, and a slow ingest must
        // not hold back the notifications after it.
        for (const listener of listeners) void deliver(listener, record);
      });
    }
  });

  const server = createConditionalServer({
    app: s3rver.callback(),
    currentEtag,
    registryPolicy: options.registryPolicy ?? true,
    onCompleting: (target, active) => {
      if (active) completing.add(target);
      else completing.delete(target);
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const endpointHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;

  return {
    endpoint: `http://${endpointHost.includes(':') ? `[${endpointHost}]` : endpointHost}:${port}`,
    port,
    bucket,
    onObjectCreated(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await delivery;
    },
  };
}

async function storedFacts(
  s3rver: S3rver,
  bucket: string,
  key: string,
): Promise<{ eTag: string; size: number } | undefined> {
  try {
    const metadata = await s3rver.store.getMetadata(bucket, key);
    return { eTag: metadata.etag, size: Number(metadata['content-length']) };
  } catch {
    // Deleted again before the notification went out: AWS would still notify, but with nothing
    // left to read there is nothing for a listener to do.
    return undefined;
  }
}

async function deliver(listener: ObjectCreatedListener, record: S3EventRecord): Promise<void> {
  try {
    await listener(record);
  } catch (err) {
    // A failing consumer must not break the upload that triggered it, as with real S3.
    console.error(`local S3: an ObjectCreated listener failed for ${record.s3.object.key}:`, err);
  }
}
