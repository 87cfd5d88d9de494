import { create } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import {
  type GraphProto,
  type ModelProto,
  type NodeProto,
  node,
  parseModel,
  type TensorProto,
  TensorProto_DataType,
} from '../onnx/index.ts';
import { encodedResult } from './encode.ts';
import { countUses, NameAllocator } from './graph.ts';
import {
  type Analysis,
  attr,
  type ConstWeight,
  DEFAULT_MIN_ELEMENTS,
  floatAttr,
  intAttr,
  isAiOnnx,
  label,
  notApplied,
  pruneUnused,
  type QuantizeResult,
  resolveConstant,
} from './quantize.ts';
import type { QuantizationReport, QuantizedNodeReport } from './report.ts';
import {
  activationParams,
  dropTransientBuffer,
  float32Shape,
  quantizeAxis0,
  quantizeBias,
  quantizePerChannel,
  quantizePerTensor,
  rawTensor,
  readFloat32,
  readFloat32Transient,
  SATURATION_FREE_LEVELS,
} from './weights.ts';

/** The values an activation took on the calibration samples. */
export interface ActivationRange {
  min: number;
  max: number;
}

export type CalibrationMethod = 'minmax' | 'percentile';

export interface StaticOptions {
  /** MatMul/Gemm weights with fewer elements stay float (Conv weights are always quantized) */
  minElements?: number;
  /** nodes left in float, by node name or by the name of their first output */
  excludeNodes?: readonly string[];
  /** how the ranges were measured, for the report */
  calibration?: NonNullable<QuantizationReport['calibration']>;
  /**
   * store int8 weights for the ops whose input has no range (they run float on dequantized
   * weights): a smaller file, at the cost of their weight rounding. @default true
   */
  weightOnly?: boolean;
  /** Gather over a constant float table (embeddings) reads int8 rows. @default true */
  tables?: boolean;
}

export interface StaticPlan {
  /** float activations calibration must measure (as graph outputs of the original model) */
  tensors: string[];
  /** Conv, MatMul and Gemm nodes that would run int8 */
  cores: number;
  /** why there is nothing to quantize statically, when `cores` is 0 */
  reason?: string;
}

export const SCHEME_STATIC_QDQ =
  'static int8 (QDQ): uint8 activations calibrated on the samples, per-channel symmetric int8 ' +
  '(|q| ≤ 64) weights of Conv, MatMul and Gemm, int32 biases';

const MS_DOMAIN = 'com.microsoft';
const { FLOAT, INT8, UINT8, INT32, INT64 } = TensorProto_DataType;

/** Ops onnxruntime runs on uint8 given a calibrated scale for their output (QLinear kernels). */
const CALIBRATED_OUTPUT = new Set([
  'Add',
  'Mul',
  'Concat',
  'GlobalAveragePool',
  'AveragePool',
  'Sigmoid',
]);
/** Ops that move or select uint8 values: their output keeps their input's scale and zero point. */
const SAME_SCALE = new Set(['MaxPool', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);

interface Core {
  node: NodeProto;
  weight: ConstWeight;
  bias?: ConstWeight;
  /** Gemm weight stored [K, N] (quantized per column, axis 1) rather than [N, K] or [M, ...] */
  columns: boolean;
}

type Source = { kind: 'calibrated' } | { kind: 'same'; as: string };

interface Prepared {
  model: ModelProto;
  g: GraphProto;
  opset: number;
  analysis: Analysis;
  cores: Core[];
  /** activations to quantize, in the order they were chosen */
  quantized: Map<string, Source>;
  reports: QuantizedNodeReport[];
  /** float constants the rewrite may leave unread */
  replaced: ConstWeight[];
  added: TensorProto[];
  names: NameAllocator;
}

const analyse = (model: ModelProto, g: GraphProto): Analysis => ({
  irVersion: Number(model.irVersion),
  initializers: new Map(g.initializer.map((t) => [t.name, t])),
  sparse: new Set(g.sparseInitializer.flatMap((s) => (s.values ? [s.values.name] : []))),
  producers: new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const))),
  graphInputs: new Set(g.input.map((v) => v.name)),
});

const constFloats = (name: string, a: Analysis) => {
  const r = resolveConstant(name, a);
  if (r.kind !== 'const' || r.transposed) return undefined;
  const read = readFloat32(r.tensor);
  return read.ok ? { c: r, data: read.data, dims: read.dims } : undefined;
};

/**
 * Folds BatchNormalization into the Conv in front of it. onnxruntime does this itself on float
 * graphs, but not once the Conv's weight sits behind a DequantizeLinear: it must happen before.
 */
const foldBatchNorms = (
  g: GraphProto,
  a: Analysis,
  names: NameAllocator,
  replaced: ConstWeight[],
  added: TensorProto[],
) => {
  const uses = countUses(g);
  const drop = new Set<NodeProto>();
  for (const bn of g.node) {
    if (bn.opType !== 'BatchNormalization' || !isAiOnnx(bn.domain) || bn.output.length !== 1) {
      continue;
    }
    const y = bn.input[0] ?? '';
    const conv = a.producers.get(y);
    if (conv?.opType !== 'Conv' || !isAiOnnx(conv.domain) || (uses.get(y) ?? 0) !== 1) continue;
    const w = constFloats(conv.input[1] ?? '', a);
    const m = w?.dims[0] ?? 0;
    const params = [1, 2, 3, 4].map((i) => constFloats(bn.input[i] ?? '', a));
    const b = conv.input[2] ? constFloats(conv.input[2], a) : undefined;
    if (!w || (conv.input[2] && !b) || params.some((p) => p?.data.length !== m)) continue;
    const [scale, shift, mean, variance] = params.map((p) => p!.data) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const eps = floatAttr(bn, 'epsilon', 1e-5);
    const per = w.data.length / m;
    const wf = new Float32Array(w.data.length);
    const bf = new Float32Array(m);
    for (let c = 0; c < m; c++) {
      const f = scale[c]! / Math.sqrt(variance[c]! + eps);
      for (let i = 0; i < per; i++) wf[c * per + i] = w.data[c * per + i]! * f;
      bf[c] = ((b?.data[c] ?? 0) - mean[c]!) * f + shift[c]!;
    }
    const base = label(conv);
    const wName = names.fresh(`${base}_folded_weight`);
    const bName = names.fresh(`${base}_folded_bias`);
    added.push(rawTensor(wName, FLOAT, w.dims, wf), rawTensor(bName, FLOAT, [m], bf));
    replaced.push(w.c, ...(b ? [b.c] : []), ...params.map((p) => p!.c));
    conv.input = [conv.input[0] ?? '', wName, bName];
    conv.output = [bn.output[0] ?? ''];
    drop.add(bn);
  }
  g.node = g.node.filter((n) => !drop.has(n));
  g.initializer.push(...added);
};

/** The constant weight (and bias) of a Conv, MatMul or Gemm, or why it stays float. */
const coreOf = (n: NodeProto, a: Analysis, minElements: number): Core | string => {
  const weight = resolveConstant(n.input[1] ?? '', a);
  if (weight.kind === 'no') return weight.reason;
  if (weight.transposed) return 'weight comes through a Transpose';
  if (resolveConstant(n.input[0] ?? '', a).kind === 'const') return 'input A is a constant';
  const read = float32Shape(weight.tensor);
  if (!read.ok) return read.reason;
  if (n.opType === 'Conv') {
    if (read.dims.length < 3) return `Conv weight has rank ${read.dims.length}`;
    const bias = n.input[2] ? resolveConstant(n.input[2], a) : undefined;
    if (bias?.kind === 'no') return `Conv bias: ${bias.reason}`;
    return { node: n, weight, ...(bias ? { bias } : {}), columns: false };
  }
  if (read.dims.length !== 2) return `weight has rank ${read.dims.length}; only 2-D is quantized`;
  if (read.elements < minElements) {
    return `weight has ${read.elements} elements, below minElements ${minElements}`;
  }
  if (n.opType === 'MatMul') return { node: n, weight, columns: true };
  if (intAttr(n, 'transA', 0) !== 0) return 'Gemm with transA';
  if (floatAttr(n, 'alpha', 1) !== 1 || floatAttr(n, 'beta', 1) !== 1) {
    return 'Gemm with alpha or beta other than 1';
  }
  const bias = n.input[2] ? resolveConstant(n.input[2], a) : undefined;
  if (bias?.kind === 'no') return `Gemm C: ${bias.reason}`;
  const columns = intAttr(n, 'transB', 0) === 0;
  return { node: n, weight, ...(bias ? { bias } : {}), columns };
};

/** Relu, or a Clip whose floor is ≥ 0: onnxruntime drops either into the QuantizeLinear after it. */
const isRemovableActivation = (n: NodeProto, a: Analysis): boolean => {
  if (!isAiOnnx(n.domain)) return false;
  if (n.opType === 'Relu') return true;
  if (n.opType !== 'Clip') return false;
  const floor = n.input[1] ? constFloats(n.input[1], a)?.data[0] : floatAttr(n, 'min', -Infinity);
  return floor !== undefined && floor >= 0;
};

/**
 * Opset 9 has no QuantizeLinear, and the QLinearConv onnxruntime fuses a QDQ group into needs ai.onnx
 * 10. Between 9 and 10 only Slice, TopK, Upsample and Dropout's mask changed meaning; Slice's
 * attributes become constant inputs here, and a model with any of the others stays at 9 (and
 * float). The gate still compares the result with the original model.
 */
const upgradeOpset9 = (
  model: ModelProto,
  g: GraphProto,
  names: NameAllocator,
): string | undefined => {
  const ai = model.opsetImport.find((o) => isAiOnnx(o.domain));
  if (ai?.version !== 9n) return undefined;
  const blocking = g.node.find(
    (n) =>
      isAiOnnx(n.domain) &&
      (n.opType === 'TopK' ||
        n.opType === 'Upsample' ||
        (n.opType === 'Dropout' && (n.output[1] ?? '') !== '')),
  );
  if (blocking) {
    return `opset 9 model with ${blocking.opType}, whose meaning changed in opset 10 (needed for QLinearConv)`;
  }
  const added: TensorProto[] = [];
  for (const n of g.node) {
    if (n.opType !== 'Slice' || !isAiOnnx(n.domain)) continue;
    const ints = (name: string) => attr(n, name)?.ints.map(Number);
    const starts = ints('starts') ?? [];
    const ends = ints('ends') ?? [];
    const axes = ints('axes') ?? starts.map((_, i) => i);
    const base = label(n);
    const input = (what: string, v: number[]) => {
      const name = names.fresh(`${base}_${what}`);
      added.push(rawTensor(name, INT64, [v.length], BigInt64Array.from(v.map(BigInt))));
      return name;
    };
    n.input = [n.input[0] ?? '', input('starts', starts), input('ends', ends), input('axes', axes)];
    n.attribute = [];
  }
  g.initializer.push(...added);
  ai.version = 10n;
  return undefined;
};

const prepare = (bytes: Uint8Array, options: StaticOptions): Prepared | string => {
  const model = parseModel(bytes);
  const g = model.graph;
  if (!g) return 'model has no graph';
  const names = new NameAllocator(g);
  const blocked = upgradeOpset9(model, g, names);
  if (blocked) return blocked;
  const opset = Number(model.opsetImport.find((o) => isAiOnnx(o.domain))?.version ?? 0);
  if (opset === 0) return 'model imports no ai.onnx opset';
  if (opset < 9)
    return `opset ${opset} predates the QDQ ops; only opset 9 and later are quantized statically`;
  const replaced: ConstWeight[] = [];
  const added: TensorProto[] = [];
  foldBatchNorms(g, analyse(model, g), names, replaced, added);
  const analysis = analyse(model, g);
  const minElements = options.minElements ?? DEFAULT_MIN_ELEMENTS;
  const excluded = new Set(options.excludeNodes ?? []);
  const reports: QuantizedNodeReport[] = [];
  const cores: Core[] = [];
  for (const n of g.node) {
    if (!['Conv', 'MatMul', 'Gemm'].includes(n.opType) || !isAiOnnx(n.domain)) continue;
    const core =
      excluded.has(n.name) || excluded.has(n.output[0] ?? '')
        ? 'excluded by options.excludeNodes'
        : coreOf(n, analysis, minElements);
    if (typeof core === 'string') {
      reports.push({ node: label(n), opType: n.opType, action: 'skipped', reason: core });
    } else cores.push(core);
  }

  const consumers = new Map<string, NodeProto[]>();
  for (const n of g.node) {
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const graphOutputs = new Set(g.output.map((v) => v.name));
  const isConst = (t: string) => resolveConstant(t, analysis).kind === 'const';
  const quantized = new Map<string, Source>();
  /** where an op's output is quantized: after a lone Relu/Clip it feeds, which then disappears */
  const outputSite = (t: string): string | undefined => {
    if (graphOutputs.has(t) || t === '') return undefined;
    const next = consumers.get(t) ?? [];
    const act = next[0];
    if (next.length === 1 && act && act.input[0] === t && isRemovableActivation(act, analysis)) {
      const out = act.output[0] ?? '';
      return graphOutputs.has(out) ? undefined : out;
    }
    return t;
  };
  const mark = (t: string | undefined, source: Source) => {
    if (t === undefined || t === '' || quantized.has(t) || isConst(t)) return false;
    quantized.set(t, source);
    return true;
  };
  for (const core of cores) {
    mark(core.node.input[0], { kind: 'calibrated' });
    mark(outputSite(core.node.output[0] ?? ''), { kind: 'calibrated' });
  }
  // The ops between the int8 ones: each one whose inputs are all quantized runs quantized too.
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of g.node) {
      if (!isAiOnnx(n.domain) || n.output.length !== 1) continue;
      const out = n.output[0] ?? '';
      if (quantized.has(out)) continue;
      if (CALIBRATED_OUTPUT.has(n.opType)) {
        const inputs = n.input.filter((i) => i !== '');
        if (inputs.length > 0 && inputs.every((i) => quantized.has(i))) {
          changed = mark(outputSite(out), { kind: 'calibrated' }) || changed;
        }
      } else if (SAME_SCALE.has(n.opType) && quantized.has(n.input[0] ?? '')) {
        if (!graphOutputs.has(out))
          changed = mark(out, { kind: 'same', as: n.input[0]! }) || changed;
      }
    }
  }
  return { model, g, opset, analysis, cores, quantized, reports, replaced, added, names };
};

/**
 * Which activations a static quantization of this model needs ranges for: the inputs and outputs
 * of its Conv, MatMul and Gemm nodes and of the ops between them that run quantized.
 */
export const planStatic = (bytes: Uint8Array, options: StaticOptions = {}): StaticPlan => {
  const p = prepare(bytes, options);
  if (typeof p === 'string') return { tensors: [], cores: 0, reason: p };
  const tensors = [...p.quantized].filter(([, s]) => s.kind === 'calibrated').map(([t]) => t);
  return {
    tensors,
    cores: p.cores.length,
    ...(p.cores.length === 0
      ? { reason: 'model has no Conv, MatMul or Gemm with a constant float32 weight' }
      : {}),
  };
};

/**
 * Static int8 in the QDQ format: QuantizeLinear → DequantizeLinear pairs on the calibrated
 * activations, DequantizeLinear in front of per-channel int8 weights and int32 biases, the float
 * ops left in place. onnxruntime fuses each DQ → op → Q group into its integer kernel
 * (QLinearConv, QLinearMatMul, QGemm, QLinearAdd...), and runs what it cannot fuse in float.
 * From opset 13 the standard ops carry per-channel scales; below, the com.microsoft ones do, as
 * the model's opset is never raised. Graph inputs and outputs keep their names and types.
 */
export const quantizeStatic = (
  bytes: Uint8Array,
  ranges: ReadonlyMap<string, ActivationRange>,
  options: StaticOptions = {},
): QuantizeResult => {
  try {
    return quantizeQdq(bytes, ranges, options);
  } finally {
    dropTransientBuffer();
  }
};

/** The scale and zero point initializers of a quantized activation, and the scale's FP32 value. */
interface QParams {
  scale: string;
  zero: string;
  value: number;
}

/** One QDQ rewrite under way: the prepared model and the nodes it inserts. */
interface Rewrite {
  p: Prepared;
  /** where the Q/DQ ops come from: ai.onnx from opset 13, com.microsoft below */
  domain: string;
  /** each quantized activation's scale and zero point, once made */
  params: Map<string, QParams>;
  /** nodes that go first: the pairs of graph inputs, the weights' and biases' DequantizeLinear */
  front: NodeProto[];
  /** nodes that go right after the producer of a tensor */
  after: Map<string, NodeProto[]>;
  /** each quantized activation's consumers read its dequantized copy instead */
  rename: Map<string, string>;
}

/** A QuantizeLinear or DequantizeLinear in the rewrite's domain, named after its output. */
const qdq = (rw: Rewrite, op: string, inputs: string[], output: string, axis?: number) =>
  node(op, inputs, [output], axis === undefined ? {} : { axis }, {
    name: rw.p.names.fresh(output),
    domain: rw.domain,
  });

/** Adds an initializer under a fresh name built on `base`; returns the name. */
const addInitializer = (
  rw: Rewrite,
  base: string,
  type: TensorProto_DataType,
  dims: number[],
  v: Parameters<typeof rawTensor>[3],
): string => {
  const name = rw.p.names.fresh(base);
  rw.p.added.push(rawTensor(name, type, dims, v));
  rw.p.g.initializer.push(rw.p.added.at(-1)!);
  return name;
};

/** Scale and zero point of a quantized activation, made once; `same` ones share their source's. */
const activationQParams = (
  rw: Rewrite,
  ranges: ReadonlyMap<string, ActivationRange>,
  t: string,
): QParams | undefined => {
  const known = rw.params.get(t);
  if (known) return known;
  const source = rw.p.quantized.get(t);
  if (!source) return undefined;
  let made: QParams | undefined;
  if (source.kind === 'same') made = activationQParams(rw, ranges, source.as);
  else {
    const r = ranges.get(t);
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max)) return undefined;
    const { scale, zeroPoint } = activationParams(r.min, r.max);
    made = {
      scale: addInitializer(rw, `${t}_scale`, FLOAT, [], Float32Array.of(scale)),
      zero: addInitializer(rw, `${t}_zero_point`, UINT8, [], Uint8Array.of(zeroPoint)),
      value: Math.fround(scale),
    };
  }
  if (made) rw.params.set(t, made);
  return made;
};

/** A Q → DQ pair on every quantized activation with a range, its consumers renamed onto the DQ. */
const quantizeActivations = (rw: Rewrite, ranges: ReadonlyMap<string, ActivationRange>): void => {
  const { names } = rw.p;
  for (const t of rw.p.quantized.keys()) {
    const q = activationQParams(rw, ranges, t);
    if (!q) continue;
    const qName = names.fresh(`${t}_quantized`);
    const dqName = names.fresh(`${t}_dequantized`);
    const pair = [
      qdq(rw, 'QuantizeLinear', [t, q.scale, q.zero], qName),
      qdq(rw, 'DequantizeLinear', [qName, q.scale, q.zero], dqName),
    ];
    rw.rename.set(t, dqName);
    if (rw.p.analysis.producers.has(t)) rw.after.set(t, pair);
    else rw.front.push(...pair);
  }
};

/** A weight quantized per output channel, and the axis its scales run along. */
type QuantizedWeight = { q: Int8Array; scales: Float32Array; dims: number[]; axis: number };

/** A core's float weight quantized per channel: per column when stored [K, N], else per row. */
const quantizeCoreWeight = (
  core: Core,
  read: { data: Float32Array; dims: number[] },
): QuantizedWeight | string => {
  if (core.columns) {
    const [rows = 0, cols = 0] = read.dims;
    const w = quantizePerChannel(read.data, rows, cols, false, SATURATION_FREE_LEVELS);
    return typeof w === 'string' ? w : { q: w.q, scales: w.scales, dims: read.dims, axis: 1 };
  }
  const w = quantizeAxis0(read.data, read.dims[0] ?? 0, SATURATION_FREE_LEVELS);
  return typeof w === 'string' ? w : { ...w, dims: read.dims, axis: 0 };
};

/**
 * A core's bias as int32 at the input scale × each weight scale, behind a DequantizeLinear;
 * returns its dequantized name, or why it cannot be (then the core stays float).
 */
const quantizeCoreBias = (
  rw: Rewrite,
  n: NodeProto,
  bias: ConstWeight,
  x: QParams,
  scales: Float32Array,
): { name: string } | string => {
  const channels = scales.length;
  const b = readFloat32(bias.tensor);
  if (!b.ok || b.data.length !== channels) {
    return b.ok ? `bias has ${b.data.length} values for ${channels} channels` : b.reason;
  }
  const base = label(n);
  const qb = quantizeBias(b.data, x.value, scales);
  const bq = addInitializer(rw, `${base}_bias_quantized`, INT32, [channels], qb.q);
  const bs = addInitializer(rw, `${base}_bias_scale`, FLOAT, [channels], qb.scales);
  const name = rw.p.names.fresh(`${base}_bias_dequantized`);
  rw.front.push(qdq(rw, 'DequantizeLinear', [bq, bs], name, 0));
  return { name };
};

/**
 * Feeds a Conv, MatMul or Gemm int8 weights (and an int32 bias when its input is quantized)
 * through DequantizeLinear; reports it quantized, or skipped and why. Returns whether it was.
 */
const quantizeCore = (rw: Rewrite, core: Core, options: StaticOptions): boolean => {
  const { names, reports } = rw.p;
  const n = core.node;
  const x = rw.params.get(n.input[0] ?? '');
  const reportSkip = (reason: string) => {
    reports.push({ node: label(n), opType: n.opType, action: 'skipped', reason });
    return false;
  };
  // Without a range for its input the op runs float, on weights stored int8 all the same: the
  // file shrinks, and onnxruntime dequantizes them (once, or per run, which is cheap next to a
  // convolution over activations).
  const weightOnly = !x;
  if (weightOnly && options.weightOnly === false) {
    return reportSkip('no calibrated range reached its input');
  }
  const read = readFloat32Transient(core.weight.tensor);
  if (!read.ok) return reportSkip(read.reason);
  const wq = quantizeCoreWeight(core, read);
  if (typeof wq === 'string') return reportSkip(wq);
  const channels = wq.scales.length;
  let biasName: string | undefined;
  if (core.bias && x) {
    const bias = quantizeCoreBias(rw, n, core.bias, x, wq.scales);
    if (typeof bias === 'string') return reportSkip(bias);
    biasName = bias.name;
  }
  const base = label(n);
  // symmetric int8 within ±64 (SATURATION_FREE_LEVELS), zero point 0: onnxruntime's fast
  // symmetric conv kernels, and no int16 saturation on any x86 CPU
  const wName = addInitializer(rw, `${base}_weight_quantized`, INT8, wq.dims, wq.q);
  const ws = addInitializer(rw, `${base}_weight_scale`, FLOAT, [channels], wq.scales);
  const zeros = new Int8Array(channels);
  const wz = addInitializer(rw, `${base}_weight_zero_point`, INT8, [channels], zeros);
  const wDq = names.fresh(`${base}_weight_dequantized`);
  rw.front.push(qdq(rw, 'DequantizeLinear', [wName, ws, wz], wDq, wq.axis));
  n.input[1] = wDq;
  if (biasName) n.input[2] = biasName;
  rw.p.replaced.push(core.weight, ...(core.bias && x ? [core.bias] : []));
  reports.push({
    node: label(n),
    opType: n.opType,
    action: 'quantized',
    ...(weightOnly
      ? { reason: 'weights only: its input has no calibrated range, so it runs float' }
      : {}),
  });
  return true;
};

/**
 * Stores a Gather's constant float table (an embedding) int8, per tensor, and dequantizes the
 * rows it reads: a DequantizeLinear after it produces its old output.
 */
const quantizeTable = (rw: Rewrite, n: NodeProto, minElements: number): void => {
  const { p, after } = rw;
  const table = resolveConstant(n.input[0] ?? '', p.analysis);
  if (table.kind !== 'const' || table.transposed) return;
  const read = readFloat32Transient(table.tensor);
  if (!read.ok || read.data.length < minElements) return;
  const t = quantizePerTensor(read.data);
  if (typeof t === 'string') return;
  const base = label(n);
  const qName = addInitializer(rw, `${table.source}_quantized`, INT8, read.dims, t.q);
  const scale = addInitializer(rw, `${table.source}_scale`, FLOAT, [], Float32Array.of(t.scale));
  const zero = addInitializer(rw, `${table.source}_zero_point`, INT8, [], new Int8Array(1));
  const out = n.output[0] ?? '';
  const gathered = p.names.fresh(`${out}_quantized`);
  n.input[0] = qName;
  n.output[0] = gathered;
  // The pair quantizing `out` for its consumers, if it has one, now follows the new producer.
  after.set(gathered, [
    qdq(rw, 'DequantizeLinear', [gathered, scale, zero], out),
    ...(after.get(out) ?? []),
  ]);
  after.delete(out);
  p.replaced.push(table);
  p.reports.push({ node: base, opType: 'Gather', action: 'quantized' });
};

/**
 * Puts the inserted nodes in place (the front ones first, each pair after its tensor's producer),
 * renames the consumers onto the dequantized copies, drops the float constants left unread and
 * imports com.microsoft when its Q/DQ ops are used.
 */
const placeNodes = (rw: Rewrite): void => {
  const { p } = rw;
  const nodes: NodeProto[] = [...rw.front];
  for (const n of p.g.node) {
    n.input = n.input.map((i) => rw.rename.get(i) ?? i);
    nodes.push(n);
    for (const o of n.output) nodes.push(...(rw.after.get(o) ?? []));
  }
  p.g.node = nodes;
  pruneUnused(p.g, p.replaced, p.analysis, p.added);
  if (rw.domain === MS_DOMAIN && !p.model.opsetImport.some((o) => o.domain === MS_DOMAIN)) {
    p.model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n }));
  }
};

/** The rewritten model, encoded, with its report. */
const appliedResult = (
  p: Prepared,
  bytes: Uint8Array,
  options: StaticOptions,
  started: number,
): QuantizeResult => {
  const { reports } = p;
  const quantizedNodes = reports.filter((r) => r.action === 'quantized').length;
  return encodedResult(
    p.model,
    (size) =>
      ({
        scheme: SCHEME_STATIC_QDQ,
        status: 'applied',
        nodes: reports,
        nodesQuantized: quantizedNodes,
        nodesSkipped: reports.length - quantizedNodes,
        sizeRatio: size / bytes.byteLength,
        quantizeMs: performance.now() - started,
        ...(options.calibration ? { calibration: options.calibration } : {}),
      }) satisfies QuantizationReport,
  );
};

/** The QDQ rewrite (see `quantizeStatic`): activations, then cores, then Gather tables. */
const quantizeQdq = (
  bytes: Uint8Array,
  ranges: ReadonlyMap<string, ActivationRange>,
  options: StaticOptions,
): QuantizeResult => {
  const started = performance.now();
  const p = prepare(bytes, options);
  if (typeof p === 'string') return notApplied(started, p, SCHEME_STATIC_QDQ, []);
  const rw: Rewrite = {
    p,
    domain: p.opset < 13 ? MS_DOMAIN : '',
    params: new Map(),
    front: [],
    after: new Map(),
    rename: new Map(),
  };
  quantizeActivations(rw, ranges);
  let quantizedCores = 0;
  for (const core of p.cores) if (quantizeCore(rw, core, options)) quantizedCores++;
  if (quantizedCores === 0) {
    return notApplied(
      started,
      'no Conv, MatMul or Gemm could run int8 (see nodes)',
      SCHEME_STATIC_QDQ,
      p.reports,
    );
  }
  if (options.tables !== false) {
    const minElements = options.minElements ?? DEFAULT_MIN_ELEMENTS;
    for (const n of p.g.node) {
      if (n.opType === 'Gather' && isAiOnnx(n.domain)) quantizeTable(rw, n, minElements);
    }
  }
  placeNodes(rw);
  return appliedResult(p, bytes, options, started);
};

/**
 * How far each activation's weak channels sit above the rounding noise its uint8 scale adds: the
 * 10th percentile, over channels, of channel RMS ÷ (scale / √12). A tensor whose small channels
 * carry a few quantization steps (depthwise convs in re-parameterised networks, mostly) loses
 * them to rounding even though its overall error looks small, and downstream layers amplify it.
 */
export const noiseMargins = (
  ranges: ReadonlyMap<string, ActivationRange>,
  channelRms: ReadonlyMap<string, ArrayLike<number>>,
): Map<string, number> => {
  const out = new Map<string, number>();
  for (const [t, r] of ranges) {
    const rms = channelRms.get(t);
    if (!rms || rms.length === 0) continue;
    const { scale } = activationParams(r.min, r.max);
    const margins = Array.from(rms, (v) => v / (scale / Math.sqrt(12))).sort((a, b) => a - b);
    out.set(t, margins[Math.floor(margins.length * 0.1)]!);
  }
  return out;
};

/** The ranges of the activations whose noise margin reaches `minMargin`; the rest stay float. */
export const rangesWithMargin = (
  ranges: ReadonlyMap<string, ActivationRange>,
  margins: ReadonlyMap<string, number>,
  minMargin: number,
): Map<string, ActivationRange> =>
  new Map([...ranges].filter(([t]) => minMargin <= 0 || (margins.get(t) ?? 0) >= minMargin));
