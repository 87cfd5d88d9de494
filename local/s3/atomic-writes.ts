import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * s3rver 3.7.1's FilesystemStore writes an object over its old file in place and resolves
 * `putObject` when the body has passed its hashing Transform, not when the file is written. So
 * (1) s3rver answers 200 while the object file may still be empty or partial: the key lock of
 * the conditional-write server is released and the next GET reads a truncated body under the new
 * ETag; (2) a client that aborts a PUT mid-body leaves the old file truncated to what arrived,
 * under the old ETag, for good; its promise never settles either. This replaces `putObject` and `putMetadata` with writes to a
 * temporary file renamed over the old one only once it is complete: an answered PUT is on disk,
 * a failed one changes nothing, and a reader that takes no lock (listings) never sees half a file.
 * The object, its MD5 and its metadata are three files swapped one after the other; the server's
 * per-key lock is what makes the three one step for readers.
 */

interface StoredObjectLike {
  bucket: string;
  key: string;
  content: Readable | Buffer;
  metadata: Record<string, string>;
}

interface FilesystemStoreLike {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putObject(object: StoredObjectLike): Promise<{ size: number; md5: string }>;
  putMetadata(
    bucket: string,
    key: string,
    metadata: Record<string, string>,
    md5?: string,
  ): Promise<void>;
}

const PATCHED = Symbol.for('maas.s3rver.atomicWrites');

const require = createRequire(import.meta.url);
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
  prototype: FilesystemStoreLike & { [PATCHED]?: true };
};
const { ALLOWED_METADATA } = require('s3rver/lib/models/object.js') as {
  ALLOWED_METADATA: string[];
};

/** Names no listing takes for an object (those end in `._S3rver_object`). */
const temporaryPath = (path: string): string => `${path}.tmp-${randomBytes(6).toString('hex')}`;

async function replaceFile(path: string, write: (temp: string) => Promise<void>): Promise<void> {
  const temp = temporaryPath(path);
  try {
    await write(temp);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function putObject(
  this: FilesystemStoreLike,
  object: StoredObjectLike,
): Promise<{ size: number; md5: string }> {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  const hash = createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content)
    ? Readable.from([object.content])
    : object.content;
  await replaceFile(objectPath, (temp) =>
    // pipeline settles once the file is flushed, and rejects when the request is cut short.
    pipeline(
      content,
      async function* measure(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(temp, { flags: 'wx' }),
    ),
  );
  const md5 = hash.digest('hex');
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
}

async function putMetadata(
  this: FilesystemStoreLike,
  bucket: string,
  key: string,
  metadata: Record<string, string>,
  md5?: string,
): Promise<void> {
  const kept = Object.fromEntries(
    Object.entries(metadata).filter(
      ([name]) => ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-'),
    ),
  );
  if (md5 !== undefined) {
    await replaceFile(this.getResourcePath(bucket, key, 'object.md5'), (temp) =>
      writeFile(temp, md5, { flag: 'wx' }),
    );
  }
  await replaceFile(this.getResourcePath(bucket, key, 'metadata.json'), (temp) =>
    writeFile(temp, JSON.stringify(kept, null, 2), { flag: 'wx' }),
  );
}

export function installAtomicWrites(): void {
  const prototype = FilesystemStore.prototype;
  if (prototype[PATCHED]) return;
  prototype.putObject = putObject;
  prototype.putMetadata = putMetadata;
  prototype[PATCHED] = true;
}
