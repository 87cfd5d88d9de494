import type * as ort from 'onnxruntime-node';
import {
  Agreement,
  type GateOptions,
  type GateResult,
  judgeVariants,
  noiseMargins,
  planStatic,
  type QuantizationReport,
  type QuantizeResult,
  quantizeStatic,
  rangesWithMargin,
} from '../quantize/index.ts';
import type { SessionSettings } from '../runtime/index.ts';
import { type CalibrationRanges, calibrate } from './calibrate.ts';
import {
  type ModelSource,
  openSession,
  readModel,
  releaseMemory,
  runtimeMessage,
  sizeOf,
  type WorkDir,
} from './model-file.ts';
import type { SampleSet } from './samples.ts';
import { evaluateVariants } from './trial.ts';

/**
 * Noise margins (see `noiseMargins`) below which an activation stays float, tried in order: the
 * first rung quantizes every planned activation, later rungs give up the weakest ones.
 */
export const MARGIN_LADDER: readonly number[] = [0, 10, 20, 40];

/**
 * Shares of the dynamic variant's weight elements stored signed within ±64 (`signedShare`),
 * largest weights first, tried in order until one keeps the gate's accuracy: signed weights run
 * on onnxruntime's u8×s8 kernels, faster than u8×u8 on x86 without VNNI, at one bit of precision.
 */
export const MIXED_SHARE_LADDER: readonly number[] = [1, 0.75, 0.5];

export interface ChooseInput {
  fp32: ModelSource;
  samples: SampleSet;
  gate: GateOptions;
  session: SessionSettings;
  /**
   * the dynamic variant, already validated, or why there is none: the quantizer's result, or the
   * variant already written out (`variant`)
   */
  dynamic: () => Quantized | QuantizeResult | Promise<Quantized | QuantizeResult>;
  /**
   * the dynamic variant with weights holding `share` of the elements signed within ±64
   * (`QuantizeOptions.signedShare`), validated as `dynamic`'s; absent: only `dynamic` is tried
   */
  mixedDynamic?: (
    share: number,
  ) => Quantized | QuantizeResult | Promise<Quantized | QuantizeResult>;
  /** why a variant must not be served (validation), or `undefined` */
  check: (bytes: Uint8Array) => string | undefined;
  /** skip the static scheme (the upload or the tests ask for dynamic only) */
  staticScheme?: boolean;
  /**
   * where variants wait for their turn: given, each variant is written there and dropped from
   * memory, so the fp32 session of the gate is built beside no model bytes at all
   */
  workDir?: WorkDir;
  log?: (message: string, attributes: Record<string, unknown>) => void;
}

export interface Int8Choice {
  /** the variant to serve, when one passed the gate */
  int8?: ModelSource;
  gate?: GateResult;
  /** the report of the scheme served, or of the best one tried */
  report: QuantizationReport;
  /** the variant `report` describes, served or not (benchmarks look inside it) */
  candidate?: ModelSource;
  /** the verdicts on the other schemes tried */
  alternatives: NonNullable<QuantizationReport['alternatives']>;
}

/** A variant the quantizer produced: its report, and its bytes in memory or in the work dir. */
interface Variant {
  report: QuantizationReport;
  model: ModelSource;
}

/** A quantizer's outcome with its variant, when there is one, already in memory or on disk. */
export interface Quantized {
  report: QuantizationReport;
  variant?: ModelSource;
}

interface Tried {
  variant: Variant;
  gate: GateResult;
}

/**
 * The variant out of memory when there is a work dir to hold it, written from its decoded model
 * piece by piece; `undefined` when the quantizer made none.
 */
const park = async (
  result: QuantizeResult,
  input: ChooseInput,
  name: string,
): Promise<Variant | undefined> => {
  if (result.report.status !== 'applied') return undefined;
  const { workDir } = input;
  if (workDir !== undefined && result.model !== undefined) {
    return { report: result.report, model: await workDir.writeModel(name, result.model) };
  }
  const bytes = result.bytes;
  return bytes === undefined ? undefined : { report: result.report, model: bytes };
};

/** A quantizer's outcome as a variant out of memory (`park`), or `undefined` when it made none. */
const parkQuantized = async (
  result: Quantized | QuantizeResult,
  input: ChooseInput,
  name: string,
): Promise<Variant | undefined> =>
  'variant' in result || !('bytes' in result)
    ? result.variant && { report: result.report, model: result.variant }
    : park(result, input, name);

/** The fp32 model's outputs on every sample, from one session. */
const referenceOutputs = async (
  input: ChooseInput,
): Promise<ort.InferenceSession.OnnxValueMapType[]> => {
  const reference: ort.InferenceSession.OnnxValueMapType[] = [];
  releaseMemory();
  const fp32 = await openSession(input.fp32, input.session);
  try {
    for (const f of input.samples.feeds) reference.push(await fp32.run(f));
  } finally {
    await fp32.release();
  }
  return reference;
};

/**
 * Whether a variant keeps the gate's accuracy on the samples, from one run of each sample: the
 * gate's own rules judge it with the timing left out, so the ladder costs no timed runs.
 */
const accurateEnough = async (
  reference: readonly ort.InferenceSession.OnnxValueMapType[],
  variant: ModelSource,
  input: ChooseInput,
): Promise<GateResult> => {
  const sizes = { fp32Bytes: sizeOf(input.fp32), int8Bytes: sizeOf(variant) };
  let session: Awaited<ReturnType<typeof openSession>> | undefined;
  try {
    session = await openSession(variant, input.session);
    const agreement = new Agreement();
    for (const [i, feeds] of input.samples.feeds.entries()) {
      const out = await session.run(feeds);
      for (const [name, t] of Object.entries(reference[i] ?? {})) {
        agreement.add(name, t as ort.Tensor, out[name] as ort.Tensor | undefined);
      }
    }
    return judgeVariants(
      { ...sizes, fp32CreateMs: 0, agreement, fp32Times: [1], int8Times: [1] },
      { ...input.gate, objective: 'size' },
    );
  } catch (err) {
    const unrunnable = `failed in onnxruntime (${runtimeMessage(err)})`;
    return judgeVariants({ ...sizes, fp32CreateMs: 0, unrunnable }, input.gate);
  } finally {
    await session?.release();
  }
};

/**
 * The static plan of `fp32`, read for this call only: a value awaited inside the caller's own
 * frame would stay referenced there, and so in memory, for the rest of the caller.
 */
const planOf = async (fp32: ModelSource) => planStatic(await readModel(fp32));

/** `input.check` on the variant's bytes, read for this call only. */
const checkVariant = async (variant: ModelSource, input: ChooseInput) =>
  input.check(await readModel(variant));

/**
 * One static try, written out: the float model, read for this try only, and the decoded variant
 * (its int8 weights, and views of the float model) are dropped when this returns, before the
 * variant is checked and run.
 */
const quantizeTry = async (
  ranges: Parameters<typeof quantizeStatic>[1],
  options: Parameters<typeof quantizeStatic>[2],
  input: ChooseInput,
): Promise<{ variant?: Variant; report: QuantizationReport }> => {
  const result = quantizeStatic(await readModel(input.fp32), ranges, options);
  const variant = await park(result, input, 'static.onnx');
  return variant === undefined ? { report: result.report } : { variant, report: result.report };
};

/**
 * The static int8 variant: calibrates on the samples, then walks the margin ladder (with MinMax
 * and percentile ranges alternately) until a variant keeps the gate's accuracy. Returns the first
 * that does, or the report of why none did.
 */
const staticVariant = async (
  input: ChooseInput,
  references: () => Promise<ort.InferenceSession.OnnxValueMapType[]>,
): Promise<{ tried?: Variant; report?: QuantizationReport }> => {
  const plan = await planOf(input.fp32);
  // each step below reads the float model afresh: the copy the plan parsed goes first
  releaseMemory();
  if (plan.cores === 0) return {};
  const feeds = input.samples.feeds;
  // Ranges come from every other sample and the accuracy check runs on all of them: a variant
  // fitted to its calibration samples alone must still hold on the ones it never saw.
  const calibrationFeeds = feeds.length >= 2 ? feeds.filter((_, i) => i % 2 === 0) : feeds;
  const ranges: CalibrationRanges = await calibrate(
    input.fp32,
    plan.tensors,
    calibrationFeeds,
    input.session,
  );
  const reference = await references();
  let lastReport: QuantizationReport | undefined;
  let previous = -1;
  for (const margin of MARGIN_LADDER) {
    for (const method of ['minmax', 'percentile'] as const) {
      const all = ranges[method];
      const kept = rangesWithMargin(all, noiseMargins(all, ranges.channelRms), margin);
      if (method === 'minmax' && kept.size === previous) continue;
      if (method === 'minmax') previous = kept.size;
      const calibration = {
        method,
        samples: calibrationFeeds.length,
        source: input.samples.source,
        activations: kept.size,
        planned: all.size,
        minNoiseMargin: margin,
      };
      // Weights of the ops left float are stored int8 first (a smaller file); where their
      // rounding is what costs the accuracy, they stay float on the next try.
      for (const weightOnly of kept.size === all.size ? [true] : [true, false]) {
        const tried = await quantizeTry(kept, { calibration, weightOnly }, input);
        // what the quantizer built and dropped on the way, before a session of its output
        releaseMemory();
        const { variant } = tried;
        if (variant === undefined) {
          lastReport = tried.report;
          continue;
        }
        const invalid = await checkVariant(variant.model, input);
        releaseMemory();
        const verdict = invalid ? undefined : await accurateEnough(reference, variant.model, input);
        const detail = {
          method,
          margin,
          weightOnly,
          activations: kept.size,
          planned: all.size,
          ...(verdict ? { cosine: verdict.cosine, top1: verdict.top1Agreement } : {}),
        };
        input.log?.('ingest: static int8 candidate', {
          ...detail,
          accept: verdict?.accept,
          invalid,
        });
        const reason = invalid ?? (verdict?.accept ? undefined : verdict?.decision);
        if (reason === undefined) {
          return { tried: variant };
        }
        lastReport = { ...tried.report, status: 'not-applied', reason };
      }
    }
  }
  return lastReport ? { report: lastReport } : {};
};

/**
 * The mixed dynamic variant: walks `MIXED_SHARE_LADDER` until a share of signed weights keeps
 * the gate's accuracy. Returns the first variant that does, or the report of why none did.
 */
const mixedVariant = async (
  input: ChooseInput,
  mixed: NonNullable<ChooseInput['mixedDynamic']>,
  references: () => Promise<ort.InferenceSession.OnnxValueMapType[]>,
): Promise<{ tried?: Variant; report?: QuantizationReport }> => {
  let lastReport: QuantizationReport | undefined;
  let previous = -1;
  for (const share of MIXED_SHARE_LADDER) {
    const result = await mixed(share);
    const variant = await parkQuantized(result, input, 'mixed.onnx');
    releaseMemory();
    const signed = variant?.report.signedWeights?.weights ?? 0;
    // no variant, or no weight to sign: a smaller share has none either
    if (variant === undefined || signed === 0) {
      lastReport ??= result.report.status === 'applied' ? undefined : result.report;
      break;
    }
    // a smaller share that signs the same weights (few large ones) is the same variant
    if (signed === previous) continue;
    previous = signed;
    const verdict = await accurateEnough(await references(), variant.model, input);
    input.log?.('ingest: mixed int8 candidate', {
      share,
      signed,
      of: variant.report.signedWeights?.of,
      cosine: verdict.cosine,
      top1: verdict.top1Agreement,
      accept: verdict.accept,
    });
    if (verdict.accept) return { tried: variant };
    lastReport = { ...variant.report, status: 'not-applied', reason: verdict.decision };
  }
  return lastReport ? { report: lastReport } : {};
};

/** Latency ratios closer than this are a tie on a shared machine: the smaller file wins it. */
const LATENCY_TIE = 0.05;

/**
 * The better of two accepted variants. Each variant's p50 is compared as its ratio to fp32 timed
 * interleaved with it: two gate runs apart see different machine load, so their milliseconds do
 * not compare, their ratios do. A tie between files of one size goes to `a`, the one tried first
 * (the uint8-weight dynamic variant before the mixed one, which gave up precision for speed).
 */
const better = (a: Tried, b: Tried, objective: GateOptions['objective']): Tried => {
  const smaller = sizeOf(a.variant.model) <= sizeOf(b.variant.model) ? a : b;
  if (objective === 'size') return smaller;
  const gap = a.gate.latencyRatio - b.gate.latencyRatio;
  if (Math.abs(gap) <= LATENCY_TIE) return smaller;
  return gap < 0 ? a : b;
};

const summary = (t: Tried): Int8Choice['alternatives'][number] => ({
  scheme: t.variant.report.scheme,
  accepted: t.gate.accept,
  decision: t.gate.decision,
  sizeRatio: t.gate.sizeRatio,
  ...(Number.isFinite(t.gate.latencyRatio) ? { latencyRatio: t.gate.latencyRatio } : {}),
  ...(Number.isFinite(t.gate.cosine) ? { cosine: t.gate.cosine } : {}),
  ...(t.gate.top1Agreement === undefined ? {} : { top1Agreement: t.gate.top1Agreement }),
});

/**
 * Ingest's int8 decision: the dynamic variant (MatMul/Gemm weights), its mixed form (the largest
 * weights signed within ±64, when that keeps the accuracy) and the static one (Conv, MatMul, Gemm
 * and the ops between, calibrated on the samples) each go through the gate against fp32; the
 * accepted one with the better objective (p50, or size) is served.
 */
export const chooseInt8 = async (input: ChooseInput): Promise<Int8Choice> => {
  const candidates: Variant[] = [];
  const reports: QuantizationReport[] = [];
  const dynamic = await input.dynamic();
  const parked = await parkQuantized(dynamic, input, 'dynamic.onnx');
  releaseMemory();
  if (parked) candidates.push(parked);
  else reports.push(dynamic.report);
  // the fp32 outputs the ladders judge accuracy against, computed once when first needed
  let reference: Promise<ort.InferenceSession.OnnxValueMapType[]> | undefined;
  const references = () => {
    reference ??= referenceOutputs(input);
    return reference;
  };
  if (parked && input.mixedDynamic) {
    const m = await mixedVariant(input, input.mixedDynamic, references);
    if (m.tried) candidates.push(m.tried);
    else if (m.report) reports.push(m.report);
  }
  if (input.staticScheme !== false) {
    const s = await staticVariant(input, references);
    if (s.tried) candidates.push(s.tried);
    else if (s.report) reports.push(s.report);
  }
  const gated: Tried[] = [];
  for (const variant of candidates) {
    releaseMemory();
    const gate = await evaluateVariants({
      fp32Bytes: input.fp32,
      int8Bytes: variant.model,
      samples: input.samples.feeds,
      options: input.gate,
      session: input.session,
    });
    gated.push({ variant, gate });
  }
  const accepted = gated.filter((t) => t.gate.accept);
  const best = accepted.reduce<Tried | undefined>(
    (acc, t) => (acc ? better(acc, t, input.gate.objective) : t),
    undefined,
  );
  const shown = best ?? gated[0];
  const alternatives = gated.filter((t) => t !== shown).map(summary);
  for (const r of reports) {
    alternatives.push({
      scheme: r.scheme,
      accepted: false,
      decision: `not timed: ${r.reason ?? 'nothing to quantize'}`,
    });
  }
  if (!shown) {
    const first = reports[0] ?? dynamic.report;
    return { report: first, alternatives: alternatives.slice(1) };
  }
  return {
    ...(best ? { int8: best.variant.model } : {}),
    gate: shown.gate,
    report: shown.variant.report,
    candidate: shown.variant.model,
    alternatives,
  };
};
