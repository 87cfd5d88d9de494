import { InvalidGateInputError } from './errors.ts';

export type GateObjective = 'latency' | 'size';

export interface GateOptions {
  /** lowest cosine similarity int8 may reach against fp32, over each output (default 0.999) */
  minCosine?: number;
  /** `latency`: int8 must also be no slower at p50; `size`: accuracy alone decides */
  objective?: GateObjective;
  /** timed rounds over all samples, per variant (default: enough for ≥ 30 timed runs, at least 3) */
  runs?: number;
  /**
   * `top1`: int8 must pick the same class as fp32 on at least `minTop1` of the rows (classifiers,
   * whose logits cosine over-weights); `cosine` (default): `minCosine` on every float output
   */
  accuracy?: 'cosine' | 'top1';
  /** lowest top-1 agreement for `accuracy: 'top1'` (default 0.98) */
  minTop1?: number;
}

export interface GateResult {
  /** serve int8 */
  accept: boolean;
  /** why int8 is or is not served, for the manifest and the user */
  decision: string;
  /** lowest, across float outputs, of the cosine between the int8 and fp32 outputs over all samples */
  cosine: number;
  maxAbsError: number;
  /** share of rows with the same argmax, over float outputs whose last dim is > 1 */
  top1Agreement?: number;
  /** int8 p50 / fp32 p50 */
  latencyRatio: number;
  /** int8 bytes / fp32 bytes */
  sizeRatio: number;
  fp32P50Ms: number;
  int8P50Ms: number;
  fp32CreateMs: number;
  int8CreateMs: number;
  /** timed runs per variant */
  timedRuns: number;
}

export const DEFAULT_MIN_COSINE = 0.999;
export const DEFAULT_MIN_TOP1 = 0.98;

type FloatData = Float32Array | Float64Array;

/** What the gate reads of an output: onnxruntime's Tensor has this shape, and so do test arrays. */
export interface OutputTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

const floatData = (t: OutputTensor): FloatData | undefined =>
  t.type === 'float32' || t.type === 'float64' ? (t.data as FloatData) : undefined;

/** Streaming accuracy figures per output: sums of products, so nothing is kept between samples. */
export class Agreement {
  readonly #outputs = new Map<string, { dot: number; ref: number; test: number }>();
  maxAbsError = 0;
  rows = 0;
  rowsAgreeing = 0;
  /** a difference that makes the comparison meaningless (shape, NaN), as a sentence */
  broken: string | undefined;

  add(name: string, ref: OutputTensor, test: OutputTensor | undefined) {
    const a = floatData(ref);
    if (!a) return;
    const b = test && floatData(test);
    if (!b || test.dims.join(',') !== ref.dims.join(',')) {
      this.broken ??= `int8 output '${name}' has shape [${test?.dims.join(', ') ?? 'none'}] where fp32 has [${ref.dims.join(', ')}]`;
      return;
    }
    const acc = this.#outputs.get(name) ?? { dot: 0, ref: 0, test: 0 };
    let { dot, ref: rr, test: tt } = acc;
    let maxAbs = this.maxAbsError;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      // Where fp32 itself is not finite there is no reference value to be close to.
      if (!Number.isFinite(x)) continue;
      if (!Number.isFinite(y)) {
        this.broken ??= `int8 output '${name}' holds NaN or Infinity where fp32 is finite`;
        return;
      }
      dot += x * y;
      rr += x * x;
      tt += y * y;
      const d = Math.abs(x - y);
      if (d > maxAbs) maxAbs = d;
    }
    this.#outputs.set(name, { dot, ref: rr, test: tt });
    this.maxAbsError = maxAbs;
    this.#top1(a, b, ref.dims.at(-1) ?? 1);
  }

  #top1(a: FloatData, b: FloatData, width: number) {
    if (width <= 1) return;
    for (let row = 0; row + width <= a.length; row += width) {
      let ia = row;
      let ib = row;
      for (let i = row + 1; i < row + width; i++) {
        if (a[i]! > a[ia]!) ia = i;
        if (b[i]! > b[ib]!) ib = i;
      }
      this.rows++;
      if (ia === ib) this.rowsAgreeing++;
    }
  }

  /** lowest cosine across outputs; identical all-zero outputs count as 1 */
  get cosine(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const { dot, ref, test } of this.#outputs.values()) {
      const c = ref === 0 && test === 0 ? 1 : dot / Math.sqrt(ref * test);
      min = Math.min(min, Number.isNaN(c) ? 0 : c);
    }
    return min;
  }

  get outputs(): number {
    return this.#outputs.size;
  }
}

export const median = (values: readonly number[]): number => {
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

const fmt = (v: number, digits = 2) => v.toFixed(digits);

/** The gate's options, checked before any model runs. */
export const gateSettings = (
  options: GateOptions,
  samples: number,
): { minCosine: number; objective: GateObjective; rounds: number } => {
  const minCosine = options.minCosine ?? DEFAULT_MIN_COSINE;
  if (samples === 0) {
    throw new InvalidGateInputError(
      'The accuracy gate got no samples; pass at least one feed (a record of input name to tensor).',
    );
  }
  if (!(minCosine > 0 && minCosine <= 1)) {
    throw new InvalidGateInputError(
      `minCosine ${minCosine} is outside (0, 1]; pass a similarity such as 0.999.`,
      { minCosine },
    );
  }
  return {
    minCosine,
    objective: options.objective ?? 'latency',
    rounds: options.runs ?? Math.max(3, Math.ceil(30 / samples)),
  };
};

/** What running both variants measured: the runs themselves happen next to ingest's warm-up. */
export interface VariantMeasurement {
  fp32Bytes: number;
  int8Bytes: number;
  fp32CreateMs: number;
  int8CreateMs?: number;
  agreement?: Agreement;
  fp32Times?: readonly number[];
  int8Times?: readonly number[];
  /** the int8 variant could not be used: what went wrong, as a sentence fragment */
  unrunnable?: string;
}

/**
 * Decides which variant to serve from what running them measured. int8 is accepted only when
 * every float output keeps cosine ≥ `minCosine` against fp32 and, for the `latency` objective, its
 * p50 is no worse than fp32's. An int8 model that could not load or run is rejected with NaN
 * accuracy figures: the caller serves fp32 either way.
 */
export const judgeVariants = (m: VariantMeasurement, options: GateOptions = {}): GateResult => {
  const minCosine = options.minCosine ?? DEFAULT_MIN_COSINE;
  const objective = options.objective ?? 'latency';
  const base: GateResult = {
    accept: false,
    decision: '',
    cosine: Number.NaN,
    maxAbsError: Number.NaN,
    latencyRatio: Number.NaN,
    sizeRatio: m.int8Bytes / m.fp32Bytes,
    fp32P50Ms: Number.NaN,
    int8P50Ms: Number.NaN,
    fp32CreateMs: m.fp32CreateMs,
    int8CreateMs: m.int8CreateMs ?? Number.NaN,
    timedRuns: 0,
  };
  const { agreement, fp32Times, int8Times } = m;
  if (m.unrunnable !== undefined || !agreement || !fp32Times || !int8Times) {
    return { ...base, decision: `fp32 served: the int8 variant ${m.unrunnable ?? 'was not run'}` };
  }
  const fp32P50Ms = median(fp32Times);
  const int8P50Ms = median(int8Times);
  const latencyRatio = int8P50Ms / fp32P50Ms;
  const result: GateResult = {
    ...base,
    maxAbsError: agreement.maxAbsError,
    cosine: agreement.cosine,
    latencyRatio,
    fp32P50Ms,
    int8P50Ms,
    timedRuns: fp32Times.length,
    ...(agreement.rows > 0 ? { top1Agreement: agreement.rowsAgreeing / agreement.rows } : {}),
  };
  const speed = `p50 ${fmt(latencyRatio)}× fp32 (${fmt(int8P50Ms)} ms vs ${fmt(fp32P50Ms)} ms)`;
  const reject = (why: string): GateResult => ({ ...result, decision: `fp32 served: ${why}` });
  if (agreement.broken) return reject(agreement.broken);
  if (agreement.outputs === 0) {
    return reject('the model has no float32/float64 output to measure int8 accuracy on');
  }
  if (options.accuracy === 'top1') {
    const minTop1 = options.minTop1 ?? DEFAULT_MIN_TOP1;
    const top1 = result.top1Agreement;
    if (top1 === undefined) {
      return reject('no float output has a last dimension > 1 to compare top-1 classes on');
    }
    if (!(top1 >= minTop1)) {
      return reject(
        `int8 picks the same top-1 class as fp32 on ${fmt(top1 * 100, 1)}% of rows, below the ` +
          `minimum ${fmt(minTop1 * 100, 1)}%: quantization costs this model too much accuracy`,
      );
    }
  } else if (!(result.cosine >= minCosine)) {
    return reject(
      `int8 cosine similarity ${fmt(result.cosine, 5)} is below the minimum ${minCosine} ` +
        `(max abs error ${result.maxAbsError.toPrecision(3)}): quantization costs this model too much accuracy`,
    );
  }
  if (objective === 'latency' && latencyRatio > 1) {
    return reject(
      `int8 is not faster: ${speed}; use the size objective to prefer the smaller file anyway`,
    );
  }
  return {
    ...result,
    accept: true,
    decision:
      `int8 served: ${options.accuracy === 'top1' ? `top-1 agreement ${fmt((result.top1Agreement ?? 0) * 100, 1)}% ≥ ${fmt((options.minTop1 ?? DEFAULT_MIN_TOP1) * 100, 1)}%, cosine ${fmt(result.cosine, 5)}` : `cosine ${fmt(result.cosine, 5)} ≥ ${minCosine}`}, ${speed}, ` +
      `size ${fmt(m.int8Bytes / m.fp32Bytes)}× fp32`,
  };
};
