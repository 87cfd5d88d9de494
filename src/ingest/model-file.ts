import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

  static async create(prefix = 'maas-ingest-'): Promise<WorkDir> {
    return new WorkDir(await mkdtemp(join(tmpdir(), prefix)));
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

  async dispose(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

let collector: (() => void) | undefined;

/**
 * Frees the buffers nothing references any more, now. A dropped model buffer is otherwise freed
 * only at V8's next full collection, which onnxruntime's allocations (invisible to V8) never
 * prompt: the next session would then be built beside a dead copy of the model. `--expose-gc` is
 * set for the collector only; a function created in a fresh context gets it.
 */
export const releaseMemory = (): void => {
  if (collector === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collector = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collector = runInNewContext('gc') as () => void;
    }
  }
  collector();
};
