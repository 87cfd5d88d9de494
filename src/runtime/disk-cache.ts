import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const SUFFIX = '.onnx';
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Model bytes on local disk (Lambda's /tmp), keyed by sha256 and bounded in bytes, least recently
 * used out first. Several processes may share the directory (the local stack's workers), so writes
 * land under a temporary name and are renamed into place, and the bound is enforced from the
 * directory itself rather than from one process's memory. Callers verify what they read.
 */
export class DiskCache {
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** the bytes stored under this digest, unverified; `undefined` on a miss */
  async read(sha256: string): Promise<Uint8Array | undefined> {
    if (!this.enabled) return undefined;
    const path = this.path(sha256);
    try {
      const bytes = await readFile(path);
      const now = new Date();
      await utimes(path, now, now);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async write(sha256: string, bytes: Uint8Array): Promise<void> {
    if (!this.enabled || bytes.byteLength > this.maxBytes) return;
    await mkdir(this.dir, { recursive: true });
    const temporary = join(this.dir, `.${sha256}.${process.pid}.${randomBytes(4).toString('hex')}`);
    try {
      await writeFile(temporary, bytes);
      await rename(temporary, this.path(sha256));
    } finally {
      await rm(temporary, { force: true });
    }
    await this.trim(sha256);
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.path(sha256), { force: true });
  }

  /** digests currently stored, most recently used first */
  async list(): Promise<string[]> {
    return (await this.files()).map((file) => file.sha256);
  }

  private async trim(keep: string): Promise<void> {
    const files = await this.files();
    let total = files.reduce((sum, file) => sum + file.size, 0);
    for (const file of files.reverse()) {
      if (total <= this.maxBytes) break;
      if (file.sha256 === keep) continue;
      await rm(this.path(file.sha256), { force: true });
      total -= file.size;
    }
  }

  private async files(): Promise<{ sha256: string; size: number; used: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
    const files: { sha256: string; size: number; used: number }[] = [];
    for (const name of names) {
      const sha256 = name.slice(0, -SUFFIX.length);
      if (!name.endsWith(SUFFIX) || !SHA256_HEX.test(sha256)) continue;
      try {
        const info = await stat(join(this.dir, name));
        files.push({ sha256, size: info.size, used: info.mtimeMs });
      } catch (err) {
        // another process trimmed it between readdir and stat
        if (!isMissing(err)) throw err;
      }
    }
    return files.sort((a, b) => b.used - a.used);
  }

  private path(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new TypeError(`not a sha256 hex digest: ${sha256}`);
    return join(this.dir, `${sha256}${SUFFIX}`);
  }
}

const isMissing = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT';
