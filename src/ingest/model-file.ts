import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { threadId } from 'node:worker_threads';
import { errorMessage } from '../errors/index.ts';
import type { ModelProto } from '../onnx/index.ts';
import { modelPieces } from '../quantize/index.ts';
import {
  createSession,
  createSessionFromFile,
  type Session,
  type SessionSettings,
} from '../runtime/index.ts';

/**
 * A model ingest wrote to its work directory. Ingest keeps the upload and its variants on disk and
 * reads them into memory only for the steps that parse them, so no copy of the model's bytes is
 * held while onnxruntime builds a session of it (docs/ingest.md, "Memory").
 */
export interface ModelFile {
  path: string;
  /** the file's size */
  bytes: number;
}

/** A model in memory (tests, small variants) or on disk (what ingest itself passes). */
export type ModelSource = Uint8Array | ModelFile;

export const isFile = (model: ModelSource): model is ModelFile => !(model instanceof Uint8Array);

export const sizeOf = (model: ModelSource): number =>
  isFile(model) ? model.bytes : model.byteLength;

/** A session of `model`, from its file when it has one. */
export const openSession = (model: ModelSource, settings?: SessionSettings): Promise<Session> =>
  isFile(model) ? createSessionFromFile(model.path, settings) : createSession(model, settings);

/** The model's bytes; a file is read again each time (a fresh copy the caller may drop). */
export const readModel = async (model: ModelSource): Promise<Uint8Array> =>
  isFile(model) ? readWhole(model.path) : model;

/**
 * A file's bytes in the buffer `readFile` allocated for them: `new Uint8Array(buffer)` would copy
 * them, and hold the model twice until the next collection.
 */
export const readWhole = async (path: string): Promise<Uint8Array> => {
  const b = await readFile(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
};

/** A temporary directory for one ingest's model files, removed by `dispose`. */
export class WorkDir {
  private constructor(readonly path: string) {}

  static async create(prefix: (typeof PREFIXES)[number] = 'maas-ingest-'): Promise<WorkDir> {
    // every kind: a calibration killed mid-way would otherwise wait for the next calibration
    for (const kind of PREFIXES) await removeStale(kind);
    const dir = new WorkDir(await mkdtemp(join(tmpdir(), `${prefix}${owner}-`)));
    live.add(dir.path);
    return dir;
  }

  async write(name: string, bytes: Uint8Array): Promise<ModelFile> {
    const path = join(this.path, name);
    await writeFile(path, bytes);
    return { path, bytes: bytes.byteLength };
  }

  /** `model` encoded into the file one piece at a time (`modelPieces`), never whole in memory */
  async writeModel(name: string, model: ModelProto): Promise<ModelFile> {
    const path = join(this.path, name);
    const handle = await open(path, 'w');
    let bytes = 0;
    try {
      for (const piece of modelPieces(model)) {
        await handle.write(piece);
        bytes += piece.byteLength;
      }
    } finally {
      await handle.close();
    }
    return { path, bytes };
  }

  file(name: string): string {
    return join(this.path, name);
  }

  /** removes every file of the dir but `kept` (the variants a step still needs) */
  async keepOnly(kept: readonly (ModelSource | undefined)[]): Promise<void> {
    const keep = new Set(kept.flatMap((m) => (m !== undefined && isFile(m) ? [m.path] : [])));
    for (const name of await readdir(this.path)) {
      const path = join(this.path, name);
      if (!keep.has(path)) await rm(path, { recursive: true, force: true });
    }
  }

  async dispose(): Promise<void> {
    live.delete(this.path);
    await rm(this.path, { recursive: true, force: true });
  }
}

/** the work dirs' prefixes: a new ingest clears stale ones of every kind */
const PREFIXES = ['maas-ingest-', 'maas-calibrate-', 'maas-optimize-'] as const;

/** a path inside a work dir, up to its last separator */
const WORK_PATH = /\/(?:[^\s'"/]+\/)*maas-(?:ingest|calibrate|optimize)-[^\s'"/]+\//g;

/**
 * An error's message without work-dir paths: onnxruntime names the file it loaded ("Load model
 * from /tmp/maas-ingest-4567.0-1TmXs1/model.onnx failed"), which told an uploader the temp path
 * and pid and made one upload's recorded reason differ between runs (found by attack).
 */
export const runtimeMessage = (err: unknown): string => errorMessage(err).replace(WORK_PATH, '');

/** work dirs of this process (and thread) still in use */
const live = new Set<string>();
/** who owns a work dir: pid and thread, so a worker thread never takes its siblings' for stale */
const owner = `${process.pid}.${threadId}`;

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: a process of another user holds that pid, so it is alive
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes the work dirs an ingest killed mid-way left behind (a Lambda time-out keeps /tmp for
 * the next invocation, whose /tmp is sized for one ingest; `kill -9` of the local stack): those
 * of a process that is gone, and this process's own that it no longer uses (a restarted Lambda
 * runtime can get its predecessor's pid). Another live process's dirs are left alone.
 */
const removeStale = async (prefix: string): Promise<void> => {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return;
  }
  await Promise.all(
    names.map(async (name) => {
      const match = new RegExp(`^${prefix}(\\d+)\\.(\\d+)-`).exec(name);
      if (match === null) return;
      const pid = Number(match[1]);
      const path = join(tmpdir(), name);
      const mine = `${match[1]}.${match[2]}` === owner;
      if (mine ? live.has(path) : isAlive(pid)) return;
      await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }),
  );
};

/** V8's `gc`: a full collection by default, the young generation alone with `type: 'minor'` */
type Collector = (options?: { type: 'major' | 'minor' }) => void;

let collector: Collector | undefined;

/** `--expose-gc` is set for the collector only; a function created in a fresh context gets it. */
const collect: Collector = (options) => {
  if (collector === undefined) {
    const exposed = (globalThis as { gc?: Collector }).gc;
    if (exposed !== undefined) collector = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as Collector;
    }
  }
  collector(options);
};

/**
 * Frees the buffers nothing references any more, now. A dropped model buffer is otherwise freed
 * only at V8's next full collection, which onnxruntime's allocations (invisible to V8) never
 * prompt: the next session would then be built beside a dead copy of the model.
 */
export const releaseMemory = (): void => collect();

/** bytes of a download between two collections of its chunks (`collectingChunks`) */
export const CHUNK_COLLECTION_BYTES = 4 * 1024 * 1024;

/**
 * A download's `onChunk` that collects V8's young generation (well under a millisecond) each time
 * `every` bytes have arrived. The socket's chunks are copied into the body and dropped, but each
 * is a malloc'd block below the mmap threshold: left to V8's own pace, 20–25 MB of them were
 * garbage at once while the encoder downloaded, in glibc's heap, which kept those pages for the
 * rest of the process (freed, they sit below blocks allocated later and cannot be given back).
 * Collected every few MB, the next chunks reuse the same few MB.
 */
export const collectingChunks = (every = CHUNK_COLLECTION_BYTES): ((bytes: number) => void) => {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    collect({ type: 'minor' });
  };
};
