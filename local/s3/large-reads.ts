import { createReadStream, type ReadStream } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * s3rver 3.7.1's FilesystemStore streams an object from a `fs.createReadStream` with the default
 * 64 KiB chunks: a 40 MB model is 650 reads, 650 socket writes and as many short-lived buffers,
 * whose garbage collection was a quarter of the server's time while a cold load fetched a model.
 * This replaces `getObject` with the same logic reading 1 MiB at a time.
 */

/** bytes per read of an object's file */
export const READ_CHUNK_BYTES = 1024 * 1024;

interface GetOptions {
  start?: number;
  end?: number;
}

interface S3ObjectLike {
  range?: { start: number; end: number };
}

interface FilesystemStoreLike {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
  getObject(bucket: string, key: string, options?: GetOptions): Promise<S3ObjectLike | null>;
}

const PATCHED = Symbol.for('maas.s3rver.largeReads');

const require = createRequire(import.meta.url);
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
  prototype: FilesystemStoreLike & { [PATCHED]?: true };
};
const S3Object = require('s3rver/lib/models/object.js') as new (
  bucket: string,
  key: string,
  content: ReadStream | null,
  metadata: Record<string, string>,
) => S3ObjectLike;

/** s3rver's own `getObject`, but for the read size. */
async function getObject(
  this: FilesystemStoreLike,
  bucket: string,
  key: string,
  options?: GetOptions,
): Promise<S3ObjectLike | null> {
  try {
    const metadata = await this.getMetadata(bucket, key);
    const lastByte = Math.max(0, Number(metadata['content-length']) - 1);
    const range = {
      start: options?.start || 0,
      end: Math.min(options?.end || Number.POSITIVE_INFINITY, lastByte),
    };
    const ranged = options !== undefined && (options.start !== undefined || Boolean(options.end));
    if (range.start < 0 || range.end < range.start) {
      // not satisfiable: s3rver answers InvalidRange for an object without content
      const object = new S3Object(bucket, key, null, metadata);
      if (ranged) object.range = range;
      return object;
    }
    const content = await new Promise<ReadStream>((resolve, reject) => {
      const stream = createReadStream(this.getResourcePath(bucket, key, 'object'), {
        ...range,
        highWaterMark: READ_CHUNK_BYTES,
      })
        .on('error', reject)
        .on('open', () => resolve(stream));
    });
    const object = new S3Object(bucket, key, content, metadata);
    if (ranged) object.range = range;
    return object;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export function installLargeReads(): void {
  const prototype = FilesystemStore.prototype;
  if (prototype[PATCHED]) return;
  prototype.getObject = getObject;
  prototype[PATCHED] = true;
}
