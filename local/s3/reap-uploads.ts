import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * s3rver keeps the parts of a multipart upload under `<bucket>/._S3rver_uploads/<uploadId>/` until
 * it completes, and answers AbortMultipartUpload with 405: a push cut by Ctrl-C (or a crash) leaves
 * its parts there for good. AWS has a lifecycle rule for this (AbortIncompleteMultipartUpload);
 * this is the local one.
 */
export const uploadsDirectory = (directory: string, bucket: string): string =>
  join(directory, bucket, '._S3rver_uploads');

export interface ReapedUploads {
  uploads: number;
  bytes: number;
}

/**
 * Removes the multipart uploads of `bucket` that received nothing for `idleMs` (0: all of them,
 * as at start, when no client can be in the middle of one).
 */
export async function reapMultipartUploads(
  directory: string,
  bucket: string,
  { idleMs, now = Date.now() }: { idleMs: number; now?: number },
): Promise<ReapedUploads> {
  const root = uploadsDirectory(directory, bucket);
  let ids: string[];
  try {
    ids = await readdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { uploads: 0, bytes: 0 };
    throw err;
  }
  const reaped: ReapedUploads = { uploads: 0, bytes: 0 };
  for (const id of ids) {
    const dir = join(root, id);
    let bytes = 0;
    let lastWrite = 0;
    try {
      const info = await stat(dir);
      if (!info.isDirectory()) continue;
      lastWrite = info.mtimeMs;
      for (const name of await readdir(dir)) {
        const file = await stat(join(dir, name));
        bytes += file.size;
        lastWrite = Math.max(lastWrite, file.mtimeMs);
      }
    } catch (err) {
      // completed or reaped while being looked at
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (idleMs > 0 && now - lastWrite < idleMs) continue;
    await rm(dir, { recursive: true, force: true });
    reaped.uploads += 1;
    reaped.bytes += bytes;
  }
  return reaped;
}
