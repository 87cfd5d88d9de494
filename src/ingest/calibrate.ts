import { appendFile, copyFile, writeFile } from 'node:fs/promises';
import { create, toBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema } from 'onnx-buf';
import type * as ort from 'onnxruntime-node';
import { parseModel, TensorProto_DataType, valueInfo } from '../onnx/index.ts';
import type { ActivationRange } from '../quantize/index.ts';
import type { SessionSettings } from '../runtime/index.ts';
import {
  isFile,
  type ModelSource,
  openSession,
  readModel,
  releaseMemory,
  sizeOf,
  WorkDir,
} from './model-file.ts';
import type { Feeds } from './samples.ts';

export interface CalibrationRanges {
  /** the smallest and largest value each activation took over all samples */
  minmax: Map<string, ActivationRange>;
  /**
   * per sample, the values at the `percentile` tails of each activation, averaged over the
   * samples: a few outliers then no longer set the scale every other value is rounded to
   */
  percentile: Map<string, ActivationRange>;
  /** root mean square of each channel (axis 1 of NCHW tensors, the last axis otherwise) */
  channelRms: Map<string, Float64Array>;
}

/** The tail percentile of the percentile method, as onnxruntime's own calibrator defaults to. */
export const DEFAULT_PERCENTILE = 99.999;
const BINS = 2048;

/** Values at the (100 − p)th and pth percentiles of `data`, from a histogram over [min, max]. */
const tails = (data: Float32Array, min: number, max: number, p: number): ActivationRange => {
  if (!(max > min)) return { min, max };
  const counts = new Uint32Array(BINS);
  const width = (max - min) / BINS;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (Number.isFinite(v)) counts[Math.min(BINS - 1, Math.floor((v - min) / width))]!++;
  }
  const cut = Math.floor((data.length * (100 - p)) / 100);
  let lo = 0;
  for (let seen = 0; lo < BINS - 1 && seen + counts[lo]! <= cut; lo++) seen += counts[lo]!;
  let hi = BINS - 1;
  for (let seen = 0; hi > 0 && seen + counts[hi]! <= cut; hi--) seen += counts[hi]!;
  return { min: min + lo * width, max: min + (hi + 1) * width };
};

const finiteRange = (data: Float32Array): ActivationRange => {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
};

const addChannelSquares = (
  into: Map<string, { sum: Float64Array; count: number }>,
  t: string,
  data: Float32Array,
  dims: readonly number[],
) => {
  const axis = dims.length >= 4 ? 1 : dims.length - 1;
  const channels = Math.max(1, dims[axis] ?? 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  let acc = into.get(t);
  if (acc?.sum.length !== channels) {
    // a dynamic channel count (rare) keeps only the first shape seen
    if (acc) return;
    acc = { sum: new Float64Array(channels), count: 0 };
    into.set(t, acc);
  }
  const sum = acc.sum;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (Number.isFinite(v)) sum[Math.floor(i / inner) % channels]! += v * v;
  }
  acc.count += data.length / channels;
};

/**
 * The model's bytes followed by a ModelProto holding only graph outputs for `tensors`: protobuf
 * merges a message field that occurs twice and appends to its repeated fields, so onnxruntime
 * reads the model with the extra outputs, and the weights were never decoded, re-encoded or held
 * in memory a second time (the whole model re-encoded cost 1.5× its size on the encoder).
 */
const outputsTail = async (model: ModelSource, tensors: readonly string[]): Promise<Uint8Array> => {
  const present = new Set(parseModel(await readModel(model)).graph?.output.map((o) => o.name));
  const output = tensors
    .filter((t) => !present.has(t))
    .map((t) => valueInfo(t, TensorProto_DataType.FLOAT));
  return toBinary(
    ModelProtoSchema,
    create(ModelProtoSchema, { graph: create(GraphProtoSchema, { output }) }),
  );
};

/** The calibration graph as a file of `dir`: the model as it is, then the outputs' tail. */
const probeFile = async (model: ModelSource, tensors: readonly string[], dir: WorkDir) => {
  const tail = await outputsTail(model, tensors);
  const path = dir.file('calibration.onnx');
  if (isFile(model)) await copyFile(model.path, path);
  else await writeFile(path, model);
  await appendFile(path, tail);
  return { path, bytes: sizeOf(model) + tail.byteLength };
};

/**
 * Runs the model on the samples with `tensors` exposed as extra graph outputs and records the
 * range each one took, by both methods, in one pass. One sample's activations are held at a time,
 * and the session is released before this returns.
 */
export const calibrate = async (
  model: ModelSource,
  tensors: readonly string[],
  samples: readonly Feeds[],
  settings: SessionSettings = {},
  percentile = DEFAULT_PERCENTILE,
): Promise<CalibrationRanges> => {
  const dir = await WorkDir.create('maas-calibrate-');
  try {
    const probe = await probeFile(model, tensors, dir);
    releaseMemory();
    return await collectRanges(await openSession(probe, settings), tensors, samples, percentile);
  } finally {
    await dir.dispose();
  }
};

const collectRanges = async (
  session: Awaited<ReturnType<typeof openSession>>,
  tensors: readonly string[],
  samples: readonly Feeds[],
  percentile: number,
): Promise<CalibrationRanges> => {
  const minmax = new Map<string, ActivationRange>();
  const sums = new Map<string, { min: number; max: number; n: number }>();
  const squares = new Map<string, { sum: Float64Array; count: number }>();
  try {
    for (const feeds of samples) {
      let out: ort.InferenceSession.OnnxValueMapType | undefined = await session.run(feeds);
      for (const t of tensors) {
        const value = out[t] as ort.Tensor | undefined;
        if (value?.type !== 'float32') continue;
        const data = value.data as Float32Array;
        const r = finiteRange(data);
        if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) continue;
        const seen = minmax.get(t);
        minmax.set(
          t,
          seen ? { min: Math.min(seen.min, r.min), max: Math.max(seen.max, r.max) } : r,
        );
        const tail = tails(data, r.min, r.max, percentile);
        const s = sums.get(t) ?? { min: 0, max: 0, n: 0 };
        sums.set(t, { min: s.min + tail.min, max: s.max + tail.max, n: s.n + 1 });
        addChannelSquares(squares, t, data, value.dims);
      }
      out = undefined;
    }
  } finally {
    await session.release();
  }
  const averaged = new Map<string, ActivationRange>();
  for (const [t, s] of sums) averaged.set(t, { min: s.min / s.n, max: s.max / s.n });
  const channelRms = new Map<string, Float64Array>();
  for (const [t, { sum, count }] of squares)
    channelRms.set(
      t,
      sum.map((v) => Math.sqrt(v / count)),
    );
  return { minmax, percentile: averaged, channelRms };
};
