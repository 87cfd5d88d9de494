import { create } from '@bufbuild/protobuf';
import { TensorProto_DataLocation, TensorProto_DataType, TensorProtoSchema } from 'onnx-buf';
import { elemTypeName, type TensorProto } from '../onnx/index.ts';

/** A float32 tensor read out of a TensorProto, or why it could not be. */
export type FloatRead =
  | { ok: true; data: Float32Array; dims: number[] }
  | { ok: false; reason: string };

const elementCount = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** The values of a float32 weight, or why it cannot be quantized. */
export const readFloat32 = (t: TensorProto): FloatRead => {
  const shape = float32Shape(t);
  return shape.ok ? { ...shape, data: floatValues(t, shape.elements) } : shape;
};

let scratch = new ArrayBuffer(0);

/**
 * `readFloat32` for a caller done with `data` before it reads the next weight (quantizing it into
 * arrays of its own): unaligned raw data is copied into one buffer reused from call to call. A
 * fresh copy per weight is freed only at V8's next full collection, which a quantizer's loops do
 * not prompt: the copies of a 320 MB model's weights added up to 0.75× its size at once.
 */
export const readFloat32Transient = (t: TensorProto): FloatRead => {
  const shape = float32Shape(t);
  if (!shape.ok) return shape;
  const raw = t.rawData;
  if (raw.byteLength === 0 || raw.byteOffset % 4 === 0) return readFloat32(t);
  if (scratch.byteLength < raw.byteLength) scratch = new ArrayBuffer(raw.byteLength);
  new Uint8Array(scratch, 0, raw.byteLength).set(raw);
  return { ok: true, dims: shape.dims, data: new Float32Array(scratch, 0, shape.elements) };
};

/** Lets the buffer `readFloat32Transient` reuses go, when a whole model has been quantized. */
export const dropTransientBuffer = (): void => {
  scratch = new ArrayBuffer(0);
};

/**
 * The dims of a float32 weight `readFloat32` would read, or why it cannot: the same checks with no
 * copy of its values (unaligned raw data is copied to be read, and a planner that only asks what
 * could be quantized would otherwise copy every weight of the model).
 */
export const float32Shape = (
  t: TensorProto,
): { ok: true; dims: number[]; elements: number } | { ok: false; reason: string } => {
  if (t.dataType !== TensorProto_DataType.FLOAT) {
    return {
      ok: false,
      reason: `weight is ${elemTypeName(t.dataType)}; only FLOAT (float32) weights are quantized`,
    };
  }
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) {
    return { ok: false, reason: 'weight is stored as external data, which is not read here' };
  }
  if (t.segment !== undefined) {
    return { ok: false, reason: 'weight is a segment of a larger tensor' };
  }
  const dims = t.dims.map(Number);
  const n = elementCount(dims);
  const stored = t.rawData.byteLength > 0 ? t.rawData.byteLength / 4 : t.floatData.length;
  if (stored !== n) {
    return {
      ok: false,
      reason: `weight holds ${stored} values where dims [${dims.join(', ')}] need ${n}`,
    };
  }
  return { ok: true, dims, elements: n };
};

/**
 * Views aligned raw data in place (no copy of a 40 MB model's weights) and copies it otherwise:
 * protobuf hands out sub-arrays of the model bytes at any offset. `new Uint8Array(raw)` is a real
 * copy even when `raw` is a Node Buffer, whose `slice()` would share memory. Every platform
 * onnxruntime-node ships for is little-endian, like ONNX raw data.
 */
const floatValues = (t: TensorProto, n: number): Float32Array => {
  const raw = t.rawData;
  if (raw.byteLength === 0) return Float32Array.from(t.floatData);
  const aligned = raw.byteOffset % 4 === 0 ? raw : new Uint8Array(raw);
  return new Float32Array(aligned.buffer, aligned.byteOffset, n);
};

const NOT_FINITE = 'weight contains NaN or Infinity';

/** One pass, no branch per element: x · 0 is 0 for every finite x and NaN for NaN and ±Infinity. */
const allFinite = (w: Float32Array): boolean => {
  let probe = 0;
  for (let i = 0; i < w.length; i++) probe += w[i]! * 0;
  return probe === 0;
};

export interface PerChannelWeight {
  /** int8 weights laid out [K, N], ready to be MatMulInteger's B */
  q: Int8Array;
  /** one scale per output channel (column of B), length N */
  scales: Float32Array;
  k: number;
  n: number;
}

/**
 * Symmetric per-output-channel int8: each column of B gets scale max|w| / 127 and zero point 0, so
 * one large column cannot crush the precision of the others. `transposed` means `w` is stored
 * [N, K] (Gemm transB=1, or B behind a Transpose) and is written out as [K, N]. Returns a reason
 * instead when a value is not finite: no int8 scale can represent it.
 */
export const quantizePerChannel = (
  w: Float32Array,
  rows: number,
  cols: number,
  transposed: boolean,
  levels: number = INT8_LEVELS,
): PerChannelWeight | string => {
  const k = transposed ? cols : rows;
  const n = transposed ? rows : cols;
  if (!allFinite(w)) return NOT_FINITE;
  const absMax = new Float32Array(n);
  if (transposed) {
    for (let c = 0; c < n; c++) {
      let m = 0;
      const base = c * k;
      for (let i = 0; i < k; i++) {
        const a = Math.abs(w[base + i]!);
        if (a > m) m = a;
      }
      absMax[c] = m;
    }
  } else {
    for (let r = 0; r < k; r++) {
      const base = r * n;
      for (let c = 0; c < n; c++) {
        const a = Math.abs(w[base + c]!);
        if (a > absMax[c]!) absMax[c] = a;
      }
    }
  }
  const scales = new Float32Array(n);
  const inv = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    const m = absMax[c]!;
    // An all-zero column quantizes to zeros under any scale; 1 keeps the multiply finite.
    const s = m > 0 ? m / levels : 1;
    scales[c] = s;
    inv[c] = 1 / Math.fround(s);
  }
  const q = new Int8Array(k * n);
  if (transposed) {
    for (let c = 0; c < n; c++) {
      const base = c * k;
      const f = inv[c]!;
      for (let i = 0; i < k; i++) q[i * n + c] = clampRound(w[base + i]! * f, levels);
    }
  } else {
    for (let r = 0; r < k; r++) {
      const base = r * n;
      for (let c = 0; c < n; c++) q[base + c] = clampRound(w[base + c]! * inv[c]!, levels);
    }
  }
  return { q, scales, k, n };
};

/**
 * Symmetric per-tensor int8, for embedding tables read by Gather: the gathered rows are
 * dequantized with one scale, which DequantizeLinear takes from opset 10 (per-axis needs 13).
 */
export const quantizePerTensor = (w: Float32Array): { q: Int8Array; scale: number } | string => {
  if (!allFinite(w)) return NOT_FINITE;
  let m = 0;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]!);
    if (a > m) m = a;
  }
  const scale = m > 0 ? m / 127 : 1;
  const inv = 1 / Math.fround(scale);
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = clampRound(w[i]! * inv);
  return { q, scale };
};

/**
 * Symmetric int8 weights rewritten in place as uint8 with zero point 128 (offset binary: the
 * same values, read as `v - 128`). onnxruntime's u8×s8 kernels on x86 CPUs without VNNI multiply
 * with VPMADDUBSW, which adds two u8·s8 products into a saturating int16: at full range
 * (255 · 127 · 2) the sum overflows, and the generated encoder lost accuracy on such a CPU (cosine
 * 0.9979 against 0.9996 on one with VNNI). u8×u8 kernels have no such step, so the accuracy the
 * gate measures at ingest holds on whichever host serves the variant.
 */
export const asOffsetUint8 = (q: Int8Array): Uint8Array => {
  const u = new Uint8Array(q.buffer, q.byteOffset, q.byteLength);
  for (let i = 0; i < u.length; i++) u[i] = u[i]! ^ 0x80;
  return u;
};

/** The zero point of `asOffsetUint8` weights. */
export const OFFSET_ZERO_POINT = 128;

/** the symmetric int8 range: |q| ≤ 127 */
export const INT8_LEVELS = 127;

/**
 * |q| ≤ 64: the largest range for which onnxruntime's u8×s8 kernels on x86 CPUs without VNNI
 * cannot saturate their int16 pair sums (255 · 64 · 2 = 32,640 ≤ 32,767). The static scheme uses
 * it: onnxruntime's symmetric conv kernels need signed weights with zero point 0, and on such a CPU
 * the generated ResNet-18 ran at 0.58× fp32 this way against 0.68–0.73× with `asOffsetUint8`
 * weights (cosine 0.99957 against 0.99988: the bit it gives up).
 */
export const SATURATION_FREE_LEVELS = 64;

// |w / scale| <= levels by construction; the clamp only absorbs float rounding at the edge.
const clampRound = (v: number, levels: number = INT8_LEVELS): number =>
  Math.min(levels, Math.max(-levels, Math.round(v)));

const bytesOf = (
  a: Int8Array | Uint8Array | Int32Array | BigInt64Array | Float32Array,
): Uint8Array<ArrayBuffer> => new Uint8Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);

/** A TensorProto over typed-array bytes, without the per-element work of the generic builder. */
export const rawTensor = (
  name: string,
  dataType: TensorProto_DataType,
  dims: readonly number[],
  values: Int8Array | Uint8Array | Int32Array | BigInt64Array | Float32Array,
): TensorProto =>
  create(TensorProtoSchema, {
    name,
    dataType,
    dims: dims.map((d) => BigInt(d)),
    rawData: bytesOf(values),
  });

/**
 * Symmetric int8 per slice of the first axis (a Conv weight [M, C/g, kH, kW] per output channel,
 * or a Gemm B stored [N, K] per output column), layout unchanged: DequantizeLinear reads it with
 * `axis: 0`.
 */
export const quantizeAxis0 = (
  w: Float32Array,
  channels: number,
  levels: number = INT8_LEVELS,
): { q: Int8Array; scales: Float32Array } | string => {
  if (!allFinite(w)) return NOT_FINITE;
  if (channels <= 0 || w.length % channels !== 0) {
    return `weight of ${w.length} values does not split into ${channels} channels`;
  }
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const base = c * per;
    let m = 0;
    for (let i = 0; i < per; i++) {
      const a = Math.abs(w[base + i]!);
      if (a > m) m = a;
    }
    const s = m > 0 ? m / levels : 1;
    scales[c] = s;
    const inv = 1 / Math.fround(s);
    for (let i = 0; i < per; i++) q[base + i] = clampRound(w[base + i]! * inv, levels);
  }
  return { q, scales };
};

/** Asymmetric uint8 parameters of an activation whose values were seen in [min, max]. */
export const activationParams = (
  min: number,
  max: number,
): { scale: number; zeroPoint: number } => {
  // The range must hold 0 exactly: zero padding and ReLU's floor are then represented without error.
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
};

/**
 * A bias as int32 at scale input scale × weight scale per channel, the layout onnxruntime's
 * QLinearConv and QGemm take it in. Values beyond int32 are clamped (they would need an input
 * scale 10⁹ times finer than the bias).
 */
export const quantizeBias = (
  b: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { q: Int32Array; scales: Float32Array } => {
  const q = new Int32Array(b.length);
  const scales = new Float32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const s = Math.fround(
      inputScale * (weightScales.length === 1 ? weightScales[0]! : weightScales[c]!),
    );
    scales[c] = s;
    const v = Math.round(b[c]! / s);
    q[c] = Number.isFinite(v) ? Math.min(2147483647, Math.max(-2147483647, v)) : 0;
  }
  return { q, scales };
};
