import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * s3rver 3.7.1's `listObjects` walks the bucket folder but, with a delimiter, never enters a
 * folder below the prefix's level: a "folder" holding only nested objects (a model with versions
 * but no `aliases.json` yet) is missing from CommonPrefixes. It also keeps keys in directory order,
 * not S3's byte order, so `start-after` and truncation could skip or repeat keys. This replaces it:
 * every key under the prefix, in UTF-8 byte order as S3 lists them, folded into common prefixes
 * by the delimiter, with `maxKeys` counting keys and prefixes together, as S3 does.
 */

interface ListOptions {
  delimiter?: string;
  startAfter?: string;
  prefix?: string;
  maxKeys?: number;
}

interface FilesystemStoreLike {
  getBucketPath(bucket: string): string;
  getMetadata(bucket: string, key: string): Promise<Record<string, unknown>>;
  listObjects(bucket: string, options: ListOptions): Promise<ListResult>;
}

export interface ListResult {
  objects: { key: string }[];
  commonPrefixes: string[];
  isTruncated: boolean;
}

const PATCHED = Symbol.for('maas.s3rver.listing');
const OBJECT_SUFFIX = '._S3rver_object';

const require = createRequire(import.meta.url);
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
  prototype: FilesystemStoreLike & { [PATCHED]?: true };
};
const S3Object = require('s3rver/lib/models/object.js') as new (
  bucket: string,
  key: string,
  content: null,
  metadata: Record<string, unknown>,
) => { key: string };

/** S3 orders keys by their UTF-8 bytes. */
export const compareKeys = (a: string, b: string): number =>
  Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** Every stored key under `folder` whose path could start with `prefix`. */
async function collectKeys(root: string, relative: string, prefix: string, out: string[]) {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(join(root, relative), { withFileTypes: true });
  } catch (err) {
    // a folder removed by a concurrent delete holds nothing any more
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) {
      const folder = `${relative}${entry.name}/`;
      // s3rver's multipart staging area is not an object folder
      if (relative === '' && entry.name.startsWith('._S3rver_')) continue;
      if (folder.startsWith(prefix) || prefix.startsWith(folder)) {
        await collectKeys(root, folder, prefix, out);
      }
    } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
      const key = `${relative}${entry.name.slice(0, -OBJECT_SUFFIX.length)}`;
      if (key.startsWith(prefix)) out.push(key);
    }
  }
}

async function listObjects(
  this: FilesystemStoreLike,
  bucket: string,
  options: ListOptions,
): Promise<ListResult> {
  const { delimiter = '', startAfter = '', prefix = '' } = options;
  const maxKeys = options.maxKeys ?? Number.POSITIVE_INFINITY;
  const keys: string[] = [];
  await collectKeys(this.getBucketPath(bucket), '', prefix, keys);
  keys.sort(compareKeys);

  const listed: string[] = [];
  const commonPrefixes: string[] = [];
  let entries = 0;
  let isTruncated = false;
  for (const key of keys) {
    if (compareKeys(key, startAfter) <= 0) continue;
    const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
    const common = cut < 0 ? undefined : key.slice(0, cut + delimiter.length);
    if (common !== undefined) {
      // a prefix already listed, here or on an earlier page (start-after names it)
      if (common === commonPrefixes.at(-1) || compareKeys(common, startAfter) <= 0) continue;
    }
    if (entries >= maxKeys) {
      isTruncated = true;
      break;
    }
    entries += 1;
    if (common === undefined) listed.push(key);
    else commonPrefixes.push(common);
  }

  const objects = await Promise.all(
    listed.map(async (key) => {
      try {
        return new S3Object(bucket, key, null, await this.getMetadata(bucket, key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }),
  );
  return {
    objects: objects.filter((object) => object !== undefined),
    commonPrefixes,
    isTruncated,
  };
}

export function installListing(): void {
  const prototype = FilesystemStore.prototype;
  if (prototype[PATCHED]) return;
  prototype.listObjects = listObjects;
  prototype[PATCHED] = true;
}
