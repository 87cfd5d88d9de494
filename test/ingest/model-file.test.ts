import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrate } from '../../src/ingest/calibrate.ts';
import {
  collectingChunks,
  openSession,
  readModel,
  releaseMemory,
  runtimeMessage,
  sizeOf,
  WorkDir,
} from '../../src/ingest/model-file.ts';
import { encodeModel, parseModel, TensorProto_DataType, valueInfo } from '../../src/onnx/index.ts';
import { startHarness } from '../support/ingest-harness.ts';
import { floatFeed, mlpModel } from '../support/quantize-fixtures.ts';

const model = mlpModel({ widths: [64, 128, 32], seed: 7 });
const feeds = [0, 1, 2].map((seed) => ({ x: floatFeed([2, 64], seed) }));

const run = async (session: ort.InferenceSession, f: Record<string, ort.Tensor>) =>
  Array.from((await session.run(f)).y!.data as Float32Array);

describe('ingest’s model files', () => {
  let dir: WorkDir;
  beforeAll(async () => {
    dir = await WorkDir.create();
  });
  afterAll(async () => {
    await dir.dispose();
  });

  it('answers the same from a session read from the file as from one built from the bytes', async () => {
    const file = await dir.write('model.onnx', model);
    expect(sizeOf(file)).toBe(model.byteLength);
    expect(await readModel(file)).toEqual(model);
    const fromFile = await openSession(file);
    const fromBytes = await openSession(model);
    try {
      for (const f of feeds) expect(await run(fromFile, f)).toEqual(await run(fromBytes, f));
    } finally {
      await fromFile.release();
      await fromBytes.release();
    }
  });

  it('frees a model buffer nothing references any more when asked, not at some later collection', () => {
    const held = () => process.memoryUsage().arrayBuffers;
    const before = held();
    ((bytes: number) => {
      new Uint8Array(bytes).fill(1);
    })(96 * 1024 * 1024);
    releaseMemory();
    expect(held() - before).toBeLessThan(16 * 1024 * 1024);
  });

  it("frees a download's dropped chunks every few MB as they arrive", () => {
    const held = () => process.memoryUsage().arrayBuffers;
    releaseMemory();
    const before = held();
    const onChunk = collectingChunks(4 * 1024 * 1024);
    let most = 0;
    // 48 MB arriving in socket-sized chunks, each copied out and dropped, as a download does
    for (let i = 0; i < 768; i++) {
      const chunk = new Uint8Array(64 * 1024).fill(i % 256);
      onChunk(chunk.byteLength);
      most = Math.max(most, held() - before);
    }
    expect(most).toBeLessThan(12 * 1024 * 1024);
  });

  it('keeps only the files it is told to keep', async () => {
    const scratch = await WorkDir.create();
    try {
      const kept = await scratch.write('model.onnx', model);
      await scratch.write('dynamic.onnx', model);
      await scratch.write('static.onnx', model);
      await scratch.keepOnly([kept, undefined, model]);
      expect(await readdir(scratch.path)).toEqual(['model.onnx']);
      expect(await readModel(kept)).toEqual(model);
    } finally {
      await scratch.dispose();
    }
  });

  it('removes its directory and everything in it', async () => {
    const scratch = await WorkDir.create();
    await scratch.write('a.onnx', model);
    await scratch.dispose();
    await expect(readdir(scratch.path)).rejects.toThrow(/ENOENT/);
  });
});

describe('calibration on the model file with its outputs appended', () => {
  it('measures the ranges a model re-encoded with those outputs measures', async () => {
    const tensors = ['h0', 'a0', 'h1'];
    const ranges = await calibrate(model, tensors, feeds);
    // the reference: the whole model decoded, outputs added, encoded again
    const reencoded = parseModel(model);
    for (const t of tensors) reencoded.graph!.output.push(valueInfo(t, TensorProto_DataType.FLOAT));
    const session = await openSession(encodeModel(reencoded));
    const want = new Map<string, { min: number; max: number }>();
    try {
      for (const f of feeds) {
        const out = await session.run(f);
        for (const t of tensors) {
          const data = out[t]!.data as Float32Array;
          const seen = want.get(t) ?? { min: Infinity, max: -Infinity };
          want.set(t, {
            min: Math.min(seen.min, ...data),
            max: Math.max(seen.max, ...data),
          });
        }
      }
    } finally {
      await session.release();
    }
    expect(new Map([...ranges.minmax])).toEqual(want);
  });
});

describe('runtimeMessage', () => {
  it('leaves work-dir paths out of what onnxruntime says (found by attack)', () => {
    const err = new Error(
      `Load model from ${join(tmpdir(), 'maas-ingest-4567.0-1TmXs1')}/model.onnx failed: Duplicate definition-site for (x)`,
    );
    expect(runtimeMessage(err)).toBe(
      'Load model from model.onnx failed: Duplicate definition-site for (x)',
    );
  });
});

describe('an ingest’s work dir', () => {
  let tmp: string;
  let previous: string | undefined;
  beforeAll(async () => {
    previous = process.env.TMPDIR;
    tmp = await mkdtemp(join(tmpdir(), 'maas-ingest-tmp-'));
    process.env.TMPDIR = tmp;
  });
  afterAll(async () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    await rm(tmp, { recursive: true, force: true });
  });

  it('removes what a killed ingest left behind, and nothing a live one uses', async () => {
    // a dead process's dir (pid 2^22 + 1 is past Linux's pid_max), this process's orphan (a Lambda
    // runtime restarted after a time-out with its predecessor's pid), a live process's dir
    const dead = join(tmp, `maas-ingest-${2 ** 22 + 1}.0-abc123`);
    // a calibration's, killed mid-way: cleared by the next ingest, not only the next calibration
    const deadCalibration = join(tmp, `maas-calibrate-${2 ** 22 + 1}.0-jkl012`);
    await mkdir(deadCalibration);
    const orphan = join(tmp, `maas-ingest-${process.pid}.${threadId}-def456`);
    const other = join(tmp, `maas-ingest-${process.ppid}.0-ghi789`);
    for (const dir of [dead, orphan, other]) {
      await mkdir(dir);
      await writeFile(join(dir, 'model.onnx'), new Uint8Array(16));
    }
    const kept = await WorkDir.create();
    const next = await WorkDir.create();
    try {
      const names = await readdir(tmp);
      expect(names).not.toContain(basename(dead));
      expect(names).not.toContain(basename(deadCalibration));
      expect(names).not.toContain(basename(orphan));
      expect(names).toContain(basename(other));
      expect(names).toContain(basename(kept.path));
      expect(names).toContain(basename(next.path));
    } finally {
      await kept.dispose();
      await next.dispose();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('is gone once the upload is registered, variants and all', async () => {
    const h = await startHarness();
    try {
      const ref = await h.upload('workdir', 'model.onnx', model);
      const outcome = await h.outcome('workdir', ref);
      expect(outcome.event).toBe('registered');
      await h.settled();
      // the local S3 keeps its own directory there; ingest's, calibration's and the optimizer's are gone
      const left = (await readdir(tmp)).filter((name) =>
        /^maas-(ingest|calibrate|optimize)-/.test(name),
      );
      expect(left).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
