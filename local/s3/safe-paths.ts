import { createRequire } from 'node:module';
import { resolve, sep } from 'node:path';

/**
 * s3rver 3.7.1 stores an object at `<directory>/<bucket>/<key>._S3rver_object`, joining the key
 * onto the path as it is: `../../outside/pwned` writes outside the data directory, and
 * `incoming/../registry/m/1/model.onnx` reaches a registry object under a key that neither the
 * key lock nor the conditional-write check knows. AWS stores any key as an opaque name; here a
 * key is a path, so the local S3 refuses the keys a path cannot hold faithfully (`.` and `..`
 * segments, empty segments, backslashes, NUL) at the door, and, behind that, every path the
 * store resolves must stay inside the bucket's folder, whatever route the key came by (a URL, a
 * copy source, a multi-object delete body).
 */

/** Why a key cannot be stored here, `undefined` when it can. */
export function unsafeKeyReason(key: string): string | undefined {
  if (key.includes('\0')) return 'contains a NUL character';
  if (key.includes('\\')) return 'contains a backslash';
  const segments = key.split('/');
  // A key ending in `/` (a "folder" object) is stored as such: only its last segment may be empty.
  for (const [i, segment] of segments.entries()) {
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
    if (segment === '' && i < segments.length - 1)
      return 'has an empty segment (a leading or double "/")';
  }
  return undefined;
}

/** S3's bucket naming rules, which also keep a bucket name a single plain folder name. */
export const isValidBucketName = (name: string): boolean =>
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes('..');

export const keyAdvice =
  'the local S3 keeps each key as a file path: use segments of plain names separated by single "/", without ".", ".." or empty segments, backslashes or NUL characters';

interface FilesystemStoreLike {
  rootDirectory: string;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}

const PATCHED = Symbol.for('maas.s3rver.safePaths');

const require = createRequire(import.meta.url);
const FilesystemStore = require('s3rver/lib/stores/filesystem.js') as {
  prototype: FilesystemStoreLike & { [PATCHED]?: true };
};
const S3Error = require('s3rver/lib/models/error.js') as new (
  code: string,
  message: string,
  detail?: Record<string, string>,
) => Error;

const inside = (root: string, path: string): boolean => {
  const resolved = resolve(path);
  return resolved === root || resolved.startsWith(root + sep);
};

export function installSafePaths(): void {
  const prototype = FilesystemStore.prototype;
  if (prototype[PATCHED]) return;
  const bucketPath = prototype.getBucketPath;
  const resourcePath = prototype.getResourcePath;

  prototype.getBucketPath = function getBucketPath(this: FilesystemStoreLike, bucket: string) {
    if (!isValidBucketName(bucket)) {
      throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', {
        BucketName: bucket,
      });
    }
    return bucketPath.call(this, bucket);
  };

  prototype.getResourcePath = function getResourcePath(
    this: FilesystemStoreLike,
    bucket: string,
    key: string | undefined,
    resource: string,
  ) {
    const folder = resolve(this.getBucketPath(bucket));
    const reason = key === undefined ? undefined : unsafeKeyReason(key);
    if (reason !== undefined) {
      throw new S3Error('InvalidArgument', `Object key ${reason}: ${keyAdvice}`, {
        ArgumentName: 'key',
      });
    }
    const path = resourcePath.call(this, bucket, key, resource);
    if (!inside(folder, path)) {
      throw new S3Error('InvalidArgument', `Object key leaves the bucket: ${keyAdvice}`, {
        ArgumentName: 'key',
      });
    }
    return path;
  };
  prototype[PATCHED] = true;
}
