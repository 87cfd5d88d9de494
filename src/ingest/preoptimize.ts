import { rm } from 'node:fs/promises';
import type * as ort from 'onnxruntime-node';
import { Agreement, median } from '../quantize/index.ts';
import type { OptimizedVariant } from '../registry/index.ts';
import { runtimeVersion, type SessionSettings } from '../runtime/index.ts';
import { inlineExternalData } from './external-data.ts';
import {
  type ModelSource,
  openSession,
  readWhole,
  releaseMemory,
  runtimeMessage,
  WorkDir,
} from './model-file.ts';
import type { Feeds } from './samples.ts';

export type PreOptimized = Pick<
  OptimizedVariant,
  'runtime' | 'level' | 'loadLevel' | 'createMs'
> & {
  bytes: Uint8Array;
};

/** where onnxruntime writes the optimized graph's weights, beside it, to be inlined after */
const WEIGHTS_FILE = 'optimized.weights';

/** Rounds of session creation per configuration: medians of 5 hold on a shared machine. */
const ROUNDS = 5;
/** Kept only when creation takes at most this share of the plain variant's. */
const MIN_SAVING = 0.9;
/** Lowest cosine between the optimized and the plain graph's outputs: the same math, reordered. */
const MIN_COSINE = 0.99999;
/** A load level may cost this much p50 at most: a faster start must not mean slower requests. */
const MAX_RUN_RATIO = 1.05;

interface Measured {
  createMs: number[];
  runMs: number[];
}

const measure = async (
  model: ModelSource,
  settings: SessionSettings,
  feeds: Feeds,
  into: Measured,
  compare?: { reference: ort.InferenceSession.OnnxValueMapType; agreement: Agreement },
): Promise<ort.InferenceSession.OnnxValueMapType> => {
  const t0 = performance.now();
  const session = await openSession(model, settings);
  into.createMs.push(performance.now() - t0);
  try {
    const out = await session.run(feeds);
    for (let i = 0; i < 3; i++) {
      const t1 = performance.now();
      await session.run(feeds);
      into.runMs.push(performance.now() - t1);
    }
    if (compare) {
      for (const [name, t] of Object.entries(compare.reference)) {
        compare.agreement.add(name, t as ort.Tensor, out[name] as ort.Tensor | undefined);
      }
    }
    return out;
  } finally {
    await session.release();
  }
};

/**
 * The served variant with onnxruntime's portable transforms (basic and extended: constant
 * folding, fusions, QDQ groups turned into integer kernels) applied once here, so a predict cold
 * start skips them. Kept only when it creates clearly faster than the plain variant, answers the
 * same on the first sample, and runs no slower; otherwise the reason it was not kept.
 */
export const preOptimize = async (
  served: ModelSource,
  feeds: Feeds,
  session: SessionSettings,
): Promise<PreOptimized | { skipped: string }> => {
  const dir = await WorkDir.create('maas-optimize-');
  try {
    return await optimizeInto(dir, served, feeds, session);
  } finally {
    await dir.dispose();
  }
};

/**
 * The optimized graph stays a file of `dir` while it is measured: every session here is read from
 * disk, and only a graph that is kept is read into memory, once, at the end.
 */
const optimizeInto = async (
  dir: WorkDir,
  served: ModelSource,
  feeds: Feeds,
  session: SessionSettings,
): Promise<PreOptimized | { skipped: string }> => {
  const path = dir.file('optimized.onnx');
  const graph = dir.file('optimized.graph.onnx');
  let optimized: ModelSource;
  try {
    releaseMemory();
    // Released unrun: the graph is written before the weights would be pre-packed, and with its
    // weights in a file of their own, written one by one. Pre-packing (a second copy of the
    // weights) and the graph encoded with its weights (a third) had set ingest's peak when fp32
    // was served: creating this session of the encoder took 2.9x its size on top of what the
    // process held, 1.9x without pre-packing, 1.1x without either.
    const s = await openSession(served, {
      ...session,
      optimizationLevel: 'extended',
      optimizedModelFilePath: graph,
      optimizedInitializersFile: WEIGHTS_FILE,
      prepack: false,
    });
    await s.release();
  } catch (err) {
    return { skipped: `onnxruntime could not write the optimized graph (${runtimeMessage(err)})` };
  }
  try {
    optimized = await inlineExternalData(graph, WEIGHTS_FILE, path);
  } catch (err) {
    return { skipped: `the optimized graph could not be read back (${runtimeMessage(err)})` };
  } finally {
    await rm(graph, { force: true });
    await rm(dir.file(WEIGHTS_FILE), { force: true });
  }
  // the weights read back, each dropped once written: gone before the sessions below are built
  releaseMemory();
  const plain: Measured = { createMs: [], runMs: [] };
  const levels = { disabled: { createMs: [], runMs: [] }, all: { createMs: [], runMs: [] } };
  const agreement = new Agreement();
  try {
    let reference: ort.InferenceSession.OnnxValueMapType | undefined;
    for (let r = 0; r < ROUNDS; r++) {
      const out = await measure(served, session, feeds, plain);
      reference ??= out;
      for (const level of ['disabled', 'all'] as const) {
        const compare = r === 0 ? { reference, agreement } : undefined;
        await measure(
          optimized,
          { ...session, optimizationLevel: level },
          feeds,
          levels[level],
          compare,
        );
      }
    }
  } catch (err) {
    return { skipped: `the optimized graph failed in onnxruntime (${runtimeMessage(err)})` };
  }
  if (agreement.broken !== undefined || !(agreement.cosine >= MIN_COSINE)) {
    return {
      skipped: `the optimized graph answers differently (${agreement.broken ?? `cosine ${agreement.cosine}`})`,
    };
  }
  const original = median(plain.createMs);
  const runP50 = median(plain.runMs);
  const options = (['disabled', 'all'] as const)
    .map((loadLevel) => ({
      loadLevel,
      create: median(levels[loadLevel].createMs),
      run: median(levels[loadLevel].runMs),
    }))
    .filter((o) => o.run <= runP50 * MAX_RUN_RATIO + 0.05)
    .sort((a, b) => a.create - b.create);
  const best = options[0];
  if (best === undefined || best.create > original * MIN_SAVING) {
    return {
      skipped:
        `no load level of the optimized graph creates faster without slower runs ` +
        `(plain ${original.toFixed(1)} ms; optimized ${(['disabled', 'all'] as const)
          .map(
            (l) =>
              `${l} ${median(levels[l].createMs).toFixed(1)} ms, p50 ${median(levels[l].runMs).toFixed(2)} ms`,
          )
          .join('; ')}; plain p50 ${runP50.toFixed(2)} ms)`,
    };
  }
  return {
    bytes: await readWhole(path),
    runtime: runtimeVersion(),
    level: 'extended',
    loadLevel: best.loadLevel,
    createMs: { original, optimized: best.create },
  };
};
