import * as ort from 'onnxruntime-node';
import type { TensorSpec } from '../onnx/index.ts';
import {
  Agreement,
  type GateOptions,
  type GateResult,
  gateSettings,
  judgeVariants,
  median,
} from '../quantize/index.ts';
import {
  datatypeOfOrt,
  ORT_TYPES,
  runtimeVersion,
  type Session,
  type SessionSettings,
} from '../runtime/index.ts';
import { fmtBytes } from '../util/index.ts';
import { UploadRejectedError } from './errors.ts';
import { type ModelSource, openSession, runtimeMessage, sizeOf } from './model-file.ts';
import type { Feeds } from './samples.ts';

export interface TrialCaps {
  loadTimeoutMs: number;
  runTimeoutMs: number;
  /** memory loading may add beyond LOAD_EXPANSION × the file's size; none: not checked */
  loadSlackBytes?: number;
}

/** what a session may hold per byte of its file: weights, the arena, onnxruntime's own copies */
export const LOAD_EXPANSION = 4;

export interface WarmupReport {
  samples: number;
  p50Ms: number;
  loadMs: number;
}

const ms = (value: number): string => `${Math.round(value)} ms`;

const declaredShape = (spec: TensorSpec): string =>
  `[${spec.shape.map((dim, i) => (dim >= 0 ? String(dim) : (spec.dimNames?.[i] ?? '?'))).join(', ')}]`;

/**
 * Why `produced` is not what the signature declares for `spec`, or `undefined` when it is: the
 * datatype and the rank must match, and every fixed dim; a dynamic dim (-1, symbolic) takes any
 * size. Predict advertises the signature as the model's metadata and its clients size their
 * buffers from it, while the protocol encodes whatever onnxruntime returns: a model whose graph
 * declares one output and computes another (ONNX does not check declared output shapes against
 * inference) must not be served.
 */
export const outputMismatch = (
  spec: TensorSpec,
  produced: ort.OnnxValue | undefined,
): string | undefined => {
  const declared = `${spec.datatype} ${declaredShape(spec)}`;
  if (produced === undefined)
    return `declares output '${spec.name}' (${declared}) but did not return it`;
  if (!(produced instanceof ort.Tensor)) {
    return `declares output '${spec.name}' as ${declared} but returned a value that is not a tensor`;
  }
  const type = datatypeOfOrt(produced.type) ?? produced.type;
  const actual = `${type} [${produced.dims.join(', ')}]`;
  const fits =
    produced.type === ORT_TYPES[spec.datatype] &&
    produced.dims.length === spec.shape.length &&
    spec.shape.every((dim, i) => dim < 0 || produced.dims[i] === dim);
  return fits ? undefined : `declares output '${spec.name}' as ${declared} but produced ${actual}`;
};

/**
 * Loads the model in onnxruntime with the serving runtime's session options and runs every sample
 * once, as a predict instance would on a cold start, checking each run's `outputs` against the
 * signature. onnxruntime's `create` and `run` are
 * synchronous native calls that nothing in the process can interrupt, so the caps are checked as
 * each call returns; a call that never returns is bounded by the invocation's own deadline (the
 * ingest claim turns that into a rejection on the next delivery).
 */
export const warmUp = async (
  model: ModelSource,
  samples: readonly Feeds[],
  caps: TrialCaps,
  settings: SessionSettings,
  outputs: readonly TensorSpec[],
): Promise<WarmupReport> => {
  const loadStart = performance.now();
  const rssBefore = process.memoryUsage.rss();
  let session: Session;
  try {
    session = await openSession(model, settings);
  } catch (err) {
    throw new UploadRejectedError(
      'LoadFailed',
      `onnxruntime could not load the model: ${runtimeMessage(err)}. Check that the model runs in ` +
        `onnxruntime ${runtimeVersion()} (CPU) before uploading it.`,
      { cause: err },
    );
  }
  try {
    // A constant the graph computes (Expand or ConstantOfShape of a constant shape) is folded
    // while the session is created: a 170-byte upload became 512 MB, which the predict cache,
    // weighing sessions by file size, counted as 170 bytes (found by attack).
    const grown = process.memoryUsage.rss() - rssBefore;
    const size = sizeOf(model);
    if (caps.loadSlackBytes !== undefined && grown > LOAD_EXPANSION * size + caps.loadSlackBytes) {
      throw new UploadRejectedError(
        'LoadTooLarge',
        `onnxruntime took ${fmtBytes(grown)} of memory to load this ${fmtBytes(size)} model, more ` +
          `than ${LOAD_EXPANSION}× its size plus ${fmtBytes(caps.loadSlackBytes)}: constants the graph ` +
          'computes (an Expand or ConstantOfShape of a constant shape) are expanded at load, and a ' +
          'predict instance would run out of memory. Upload the model with those tensors as initializers.',
        { details: { loadBytes: grown, bytes: size } },
      );
    }
    const loadMs = performance.now() - loadStart;
    if (loadMs > caps.loadTimeoutMs) {
      throw new UploadRejectedError(
        'LoadTooSlow',
        `onnxruntime took ${ms(loadMs)} to load the model, over the ${ms(caps.loadTimeoutMs)} cap: ` +
          'a predict instance could not start in time. Upload a smaller or simpler model.',
        { details: { loadMs } },
      );
    }
    const times: number[] = [];
    for (const [index, feeds] of samples.entries()) {
      const start = performance.now();
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(feeds);
      } catch (err) {
        throw new UploadRejectedError(
          'WarmupFailed',
          `The model failed on sample #${index + 1}: ${runtimeMessage(err)}. Upload samples ` +
            '(a .samples.json sidecar) the model accepts, or fix the model.',
          { cause: err, details: { sample: index + 1 } },
        );
      }
      const runMs = performance.now() - start;
      if (runMs > caps.runTimeoutMs) {
        throw new UploadRejectedError(
          'WarmupTooSlow',
          `The model took ${ms(runMs)} on sample #${index + 1}, over the ${ms(caps.runTimeoutMs)} ` +
            'cap: predict requests would time out. Upload a faster model or smaller samples.',
          { details: { sample: index + 1, runMs } },
        );
      }
      for (const spec of outputs) {
        const mismatch = outputMismatch(spec, results[spec.name]);
        if (mismatch === undefined) continue;
        throw new UploadRejectedError(
          'OutputSignatureMismatch',
          `The model ${mismatch} on sample #${index + 1}: predict would answer with tensors its ` +
            'metadata does not describe. Fix the output declaration in the graph (use a symbolic ' +
            'dim for a size that varies) or the computation, then upload it again.',
          { details: { sample: index + 1, output: spec.name } },
        );
      }
      times.push(runMs);
    }
    return { samples: samples.length, p50Ms: median(times), loadMs };
  } finally {
    await session.release();
  }
};

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const value = await f();
  return [value, performance.now() - t0];
};

export interface VariantsInput {
  fp32Bytes: ModelSource;
  int8Bytes: ModelSource;
  /** feeds, as the runtime would pass them: each sample runs on both variants */
  samples: readonly Feeds[];
  options?: GateOptions;
  /** the serving runtime's session settings, so timings match production */
  session?: SessionSettings;
}

/**
 * Runs the fp32 model and its int8 variant on the same samples and lets the quantizer's gate
 * decide which one to serve. The first run of each sample provides the accuracy figures; timed
 * runs then alternate between the variants (and which goes first) so load on a shared machine
 * falls on both alike. An int8 model that fails to load or run is judged unrunnable, not thrown.
 */
export const evaluateVariants = async (input: VariantsInput): Promise<GateResult> => {
  const { fp32Bytes, int8Bytes, samples, options = {} } = input;
  const { rounds } = gateSettings(options, samples.length);
  const sizes = { fp32Bytes: sizeOf(fp32Bytes), int8Bytes: sizeOf(int8Bytes) };
  // fp32 first, onto a heap with no copy of the model in it: its creation is ingest's peak.
  const [fp32, fp32CreateMs] = await timed(() => openSession(fp32Bytes, input.session));
  let int8: Session | undefined;
  try {
    let int8CreateMs: number;
    try {
      [int8, int8CreateMs] = await timed(() => openSession(int8Bytes, input.session));
    } catch (err) {
      const unrunnable = `failed to load in onnxruntime (${runtimeMessage(err)})`;
      return judgeVariants({ ...sizes, fp32CreateMs, unrunnable }, options);
    }
    const i8 = int8;
    const agreement = new Agreement();
    const fp32Times: number[] = [];
    const int8Times: number[] = [];
    try {
      for (const feeds of samples) {
        const ref = await fp32.run(feeds);
        const test = await i8.run(feeds);
        for (const [name, t] of Object.entries(ref)) {
          agreement.add(name, t as ort.Tensor, test[name] as ort.Tensor | undefined);
        }
      }
      for (let r = 0; r < rounds; r++) {
        for (const [i, feeds] of samples.entries()) {
          const int8First = (r + i) % 2 === 1;
          if (int8First) int8Times.push((await timed(() => i8.run(feeds)))[1]);
          fp32Times.push((await timed(() => fp32.run(feeds)))[1]);
          if (!int8First) int8Times.push((await timed(() => i8.run(feeds)))[1]);
        }
      }
    } catch (err) {
      const unrunnable = `failed to run in onnxruntime (${runtimeMessage(err)})`;
      return judgeVariants({ ...sizes, fp32CreateMs, int8CreateMs, unrunnable }, options);
    }
    return judgeVariants(
      { ...sizes, fp32CreateMs, int8CreateMs, agreement, fp32Times, int8Times },
      options,
    );
  } finally {
    await fp32.release();
    await int8?.release();
  }
};
