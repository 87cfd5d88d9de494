import * as ort from 'onnxruntime-node';
import { errorMessage } from '../errors/index.ts';
import type { TensorSpec } from '../onnx/index.ts';
import { datatypeOfOrt, ORT_TYPES } from '../protocol/index.ts';
import { UploadRejectedError } from './errors.ts';
import type { Feeds } from './samples.ts';

export interface TrialCaps {
  loadTimeoutMs: number;
  runTimeoutMs: number;
}

export interface WarmupReport {
  samples: number;
  p50Ms: number;
  loadMs: number;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? 0)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

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
  bytes: Uint8Array,
  samples: readonly Feeds[],
  caps: TrialCaps,
  sessionOptions: ort.InferenceSession.SessionOptions,
  outputs: readonly TensorSpec[],
): Promise<WarmupReport> => {
  const loadStart = performance.now();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (err) {
    throw new UploadRejectedError(
      'LoadFailed',
      `onnxruntime could not load the model: ${errorMessage(err)}. Check that the model runs in ` +
        `onnxruntime ${ort.env.versions.common} (CPU) before uploading it.`,
      { cause: err },
    );
  }
  try {
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
          `The model failed on sample #${index + 1}: ${errorMessage(err)}. Upload samples ` +
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
