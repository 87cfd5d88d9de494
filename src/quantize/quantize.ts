import { create } from '@bufbuild/protobuf';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import {
  AttributeProto_AttributeType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  node,
  parseModel,
  type TensorProto,
  TensorProto_DataType,
} from '../onnx/index.ts';
import { encodedResult } from './encode.ts';
import { countUses, NameAllocator, subgraphsOf, walkNodes } from './graph.ts';
import type { QuantizationReport, QuantizedNodeReport } from './report.ts';
import {
  asOffsetUint8,
  dropTransientBuffer,
  float32Shape,
  OFFSET_ZERO_POINT,
  type PerChannelWeight,
  quantizePerChannel,
  quantizePerTensor,
  rawTensor,
  readFloat32,
  readFloat32Transient,
  SATURATION_FREE_LEVELS,
} from './weights.ts';

export interface QuantizeOptions {
  /** weights with fewer elements stay float: their int8 saving is smaller than the added nodes */
  minElements?: number;
  /** nodes left in float, by node name or by the name of their first output */
  excludeNodes?: readonly string[];
  /** the only scheme: dynamic int8 with the op pattern the model's opset allows */
  scheme?: 'auto';
  /**
   * share (0–1] of the quantized weights' elements stored as signed int8 within ±64
   * (`SATURATION_FREE_LEVELS`) instead of uint8 around 128, largest weights first. onnxruntime
   * multiplies uint8 activations by signed weights with u8×s8 kernels, faster than its u8×u8 ones
   * on x86 without VNNI (docs/performance.md); within ±64 their int16 pair sums cannot saturate on
   * any CPU. The price is one bit of weight precision, so the share is a trade the caller
   * measures (ingest: `MIXED_SHARE_LADDER`). @default 0
   */
  signedShare?: number;
}

export interface QuantizeResult {
  /**
   * the int8 model, or `undefined` when nothing was quantized (why in `report.reason`); encoded
   * on first read (`encodedResult`)
   */
  readonly bytes: Uint8Array | undefined;
  /**
   * the int8 model decoded, when one was made: `modelPieces` writes it out without holding it
   * encoded whole. Its float tensors are views of the input's buffer, which it keeps alive.
   */
  model?: ModelProto;
  report: QuantizationReport;
}

export const DEFAULT_MIN_ELEMENTS = 4096;

const MS_DOMAIN = 'com.microsoft';
export const SCHEME_MATMUL_INTEGER =
  'dynamic int8: DynamicQuantizeLinear + MatMulInteger, per-channel symmetric weights (uint8 around 128); ' +
  'Gather tables per-tensor (DequantizeLinear)';
export const SCHEME_DYNAMIC_QUANTIZE_MATMUL =
  'dynamic int8: com.microsoft DynamicQuantizeMatMul, per-channel symmetric weights (uint8 around 128); ' +
  'Gather tables per-tensor (DequantizeLinear)';

/**
 * The scheme of a variant with `signedShare` > 0: which weights are signed, and how many of the
 * weight elements that is.
 */
export const mixedScheme = (scheme: string, signed: number, of: number, share: number): string =>
  scheme.replace(
    '(uint8 around 128)',
    `(the ${signed} largest of ${of}, ${Math.round(share * 100)}% of weight elements, signed within ` +
      `±${SATURATION_FREE_LEVELS} for u8×s8 kernels; the rest uint8 around 128)`,
  );

/** A constant weight, found through any Identity or 2-D Transpose nodes between it and its use. */
export interface ConstWeight {
  kind: 'const';
  /** name of the initializer or Constant output holding the data */
  source: string;
  tensor: TensorProto;
  /** the weight reaches the node transposed relative to how it is stored */
  transposed: boolean;
  /** Identity/Transpose outputs between the use and `source`, nearest first */
  via: string[];
}

export type Resolved = ConstWeight | { kind: 'no'; reason: string };

export interface Analysis {
  irVersion: number;
  initializers: Map<string, TensorProto>;
  sparse: Set<string>;
  producers: Map<string, NodeProto>;
  graphInputs: Set<string>;
}

export const isAiOnnx = (domain: string) => domain === '' || domain === 'ai.onnx';

export const attr = (n: NodeProto, name: string) => n.attribute.find((a) => a.name === name);
export const floatAttr = (n: NodeProto, name: string, fallback: number) =>
  attr(n, name)?.f ?? fallback;
export const intAttr = (n: NodeProto, name: string, fallback: number) => {
  const a = attr(n, name);
  return a === undefined ? fallback : Number(a.i);
};

export const label = (n: NodeProto) => n.name || `${n.opType}(${n.output[0] ?? ''})`;

export const resolveConstant = (name: string, a: Analysis, depth = 0): Resolved => {
  const init = a.initializers.get(name);
  if (init) {
    // Before IR 4 every initializer had to be listed as an input too, so that says nothing; from
    // IR 4 on, a listed initializer is a default the caller may override at run time.
    if (a.irVersion >= 4 && a.graphInputs.has(name)) {
      return { kind: 'no', reason: 'weight is also a graph input, so callers may override it' };
    }
    return { kind: 'const', source: name, tensor: init, transposed: false, via: [] };
  }
  if (a.sparse.has(name)) return { kind: 'no', reason: 'weight is a sparse initializer' };
  const producer = a.producers.get(name);
  if (!producer || !isAiOnnx(producer.domain) || depth > 8) {
    return { kind: 'no', reason: 'weight is computed at run time, not a constant' };
  }
  if (producer.opType === 'Constant') {
    const value = attr(producer, 'value');
    if (value?.type !== AttributeProto_AttributeType.TENSOR || !value.t) {
      return { kind: 'no', reason: 'weight is a Constant without a tensor value' };
    }
    return { kind: 'const', source: name, tensor: value.t, transposed: false, via: [] };
  }
  if (producer.opType === 'Identity' || producer.opType === 'Transpose') {
    const inner = resolveConstant(producer.input[0] ?? '', a, depth + 1);
    if (inner.kind === 'no') return inner;
    let flip = false;
    if (producer.opType === 'Transpose') {
      const perm = attr(producer, 'perm')?.ints.map(Number);
      // Only a 2-D transpose is a transposed matrix; other perms reorder batch axes.
      if (inner.tensor.dims.length !== 2 || (perm && (perm[0] !== 1 || perm[1] !== 0))) {
        return { kind: 'no', reason: 'weight comes through a Transpose that is not 2-D [1, 0]' };
      }
      flip = true;
    }
    return {
      ...inner,
      transposed: inner.transposed !== flip,
      via: [name, ...inner.via],
    };
  }
  return { kind: 'no', reason: 'weight is computed at run time, not a constant' };
};

/** A constant's float values reshaped as a bias row of length n, when it broadcasts as one. */
const asBiasRow = (values: Float32Array, dims: readonly number[], n: number, beta: number) => {
  const count = values.length;
  const isRow = count === n && dims.slice(0, -1).every((d) => d === 1);
  if (!isRow && count !== 1) return undefined;
  const row = new Float32Array(n);
  for (let i = 0; i < n; i++) row[i] = beta * values[isRow ? i : 0]!;
  return row;
};

/** Everything one rewrite needs: the graph being built and where new tensors go. */
class Rewriter {
  readonly names: NameAllocator;
  readonly newInitializers: TensorProto[] = [];
  /** int8 weights by (source, orientation): tied weights are stored once */
  readonly #weights = new Map<
    string,
    { qName: string; zeroName: string } & Pick<PerChannelWeight, 'scales' | 'n'>
  >();
  readonly #scales = new Map<string, string>();
  /** every int8 weight made, by its initializer's name: what the report counts once pruned */
  readonly made = new Map<string, { source: string; elements: number; signed: boolean }>();

  constructor(
    graph: GraphProto,
    readonly analysis: Analysis,
    readonly useContribOp: boolean,
    /** weight sources stored signed within ±64 rather than uint8 around 128 */
    readonly signedSources: ReadonlySet<string> = new Set(),
  ) {
    this.names = new NameAllocator(graph);
  }

  init(
    base: string,
    dataType: TensorProto_DataType,
    dims: number[],
    v: Int8Array | Uint8Array | Float32Array,
  ) {
    const name = this.names.fresh(base);
    this.newInitializers.push(rawTensor(name, dataType, dims, v));
    return name;
  }

  /**
   * int8 B [K, N] stored as uint8 around zero point 128 (`asOffsetUint8`), or signed within ±64
   * for a source in `signedSources`, and its per-channel scales (times Gemm's alpha), or why the
   * weight stays float
   */
  weight(c: ConstWeight, alpha: number, minElements: number) {
    const key = `${c.source}\u0000${c.transposed}`;
    let entry = this.#weights.get(key);
    if (!entry) {
      const read = readFloat32Transient(c.tensor);
      if (!read.ok) return read.reason;
      if (read.dims.length !== 2) {
        return `weight has rank ${read.dims.length}; only 2-D weights are quantized`;
      }
      if (read.data.length < minElements) {
        return `weight has ${read.data.length} elements, below minElements ${minElements}`;
      }
      const [rows = 0, cols = 0] = read.dims;
      const signed = this.signedSources.has(c.source);
      const levels = signed ? SATURATION_FREE_LEVELS : undefined;
      const w = quantizePerChannel(read.data, rows, cols, c.transposed, levels);
      if (typeof w === 'string') return w;
      const { UINT8, INT8 } = TensorProto_DataType;
      const dims = [w.k, w.n];
      const qName = signed
        ? this.init(`${c.source}_quantized`, INT8, dims, w.q)
        : this.init(`${c.source}_quantized`, UINT8, dims, asOffsetUint8(w.q));
      const zeroName = signed
        ? this.init(`${c.source}_zero_point`, INT8, [], new Int8Array(1))
        : this.init(`${c.source}_zero_point`, UINT8, [], Uint8Array.of(OFFSET_ZERO_POINT));
      entry = { qName, zeroName, scales: w.scales, n: w.n };
      this.made.set(qName, { source: c.source, elements: read.data.length, signed });
      this.#weights.set(key, entry);
    }
    const scaleKey = `${key}\u0000${alpha}`;
    let scaleName = this.#scales.get(scaleKey);
    if (!scaleName) {
      // Gemm's alpha folds into the per-channel scales: one multiply fewer at run time.
      const s = alpha === 1 ? entry.scales : entry.scales.map((v) => v * alpha);
      scaleName = this.init(`${c.source}_scale`, TensorProto_DataType.FLOAT, [entry.n], s);
      this.#scales.set(scaleKey, scaleName);
    }
    return { qName: entry.qName, zeroName: entry.zeroName, scaleName, n: entry.n };
  }

  /** an int8 copy of a Gather table with its scalar scale and zero point, or why it stays float */
  table(c: ConstWeight, minElements: number) {
    if (c.transposed) return 'table comes through a Transpose';
    const read = readFloat32Transient(c.tensor);
    if (!read.ok) return read.reason;
    if (read.data.length < minElements) {
      return `table has ${read.data.length} elements, below minElements ${minElements}`;
    }
    const t = quantizePerTensor(read.data);
    if (typeof t === 'string') return t;
    const { INT8, FLOAT } = TensorProto_DataType;
    return {
      qName: this.init(`${c.source}_quantized`, INT8, read.dims, t.q),
      scaleName: this.init(`${c.source}_scale`, FLOAT, [], Float32Array.of(t.scale)),
      zeroName: this.init(`${c.source}_zero_point`, INT8, [], new Int8Array(1)),
    };
  }
}

interface Bias {
  /** a constant [N] vector for DynamicQuantizeMatMul's bias input */
  row?: string;
  /** anything else, added after the product */
  add?: string;
  /** nodes computing `add` (beta × C when C is not constant) */
  nodes: NodeProto[];
  /** the constant C that `row` or `add` was computed from */
  replaces?: ConstWeight;
}

interface Rewrite {
  nodes: NodeProto[];
  /** constants the new nodes no longer read, to drop if nothing else does */
  replaced: ConstWeight[];
}

const gemmBias = (n: NodeProto, rw: Rewriter, cols: number, opset: number): Bias | string => {
  const c = n.input[2] ?? '';
  const beta = floatAttr(n, 'beta', 1);
  if (c === '' || beta === 0) return { nodes: [] };
  const base = label(n);
  const resolved = resolveConstant(c, rw.analysis);
  if (resolved.kind === 'const') {
    const read = readFloat32(resolved.tensor);
    const row = read.ok ? asBiasRow(read.data, read.dims, cols, beta) : undefined;
    if (row) {
      const name = rw.init(`${base}_bias`, TensorProto_DataType.FLOAT, [cols], row);
      return rw.useContribOp
        ? { row: name, nodes: [], replaces: resolved }
        : { add: name, nodes: [], replaces: resolved };
    }
  }
  // Add and Mul broadcast multidirectionally only from opset 7; before that they need attributes
  // whose meaning depends on shapes not known here.
  if (opset < 7) return 'Gemm C is not a constant row vector, and opset < 7 predates broadcasting';
  if (beta === 1) return { add: c, nodes: [] };
  const betaName = rw.init(`${base}_beta`, TensorProto_DataType.FLOAT, [], Float32Array.of(beta));
  const scaled = rw.names.fresh(`${base}_beta_c`);
  return { add: scaled, nodes: [node('Mul', [c, betaName], [scaled], {}, rw.names.fresh(scaled))] };
};

/** The nodes replacing one MatMul or Gemm, or why it stays float. */
const rewriteNode = (
  n: NodeProto,
  rw: Rewriter,
  opset: number,
  minElements: number,
): Rewrite | string => {
  const isGemm = n.opType === 'Gemm';
  const [a = '', b = ''] = n.input;
  const y = n.output[0] ?? '';
  const resolved = resolveConstant(b, rw.analysis);
  if (resolved.kind === 'no') {
    const aConst = resolveConstant(a, rw.analysis).kind === 'const';
    return aConst ? 'the constant is input A; only a constant B is quantized' : resolved.reason;
  }
  const transB = isGemm && intAttr(n, 'transB', 0) === 1;
  const weight = { ...resolved, transposed: resolved.transposed !== transB };
  const alpha = isGemm ? floatAttr(n, 'alpha', 1) : 1;
  const w = rw.weight(weight, alpha, minElements);
  if (typeof w === 'string') return w;
  const bias = isGemm ? gemmBias(n, rw, w.n, opset) : { nodes: [] };
  if (typeof bias === 'string') return bias;

  const base = label(n);
  const out: NodeProto[] = [];
  const fresh = (suffix: string) => rw.names.fresh(`${base}_${suffix}`);
  let input = a;
  if (isGemm && intAttr(n, 'transA', 0) === 1) {
    input = fresh('a_transposed');
    out.push(node('Transpose', [a], [input], { perm: [1, 0] }, fresh('transpose_a')));
  }
  out.push(...bias.nodes);
  const product = bias.add ? fresh('product') : y;
  if (rw.useContribOp) {
    const inputs = [input, w.qName, w.scaleName, w.zeroName];
    if (bias.row) inputs.push(bias.row);
    out.push(
      node(
        'DynamicQuantizeMatMul',
        inputs,
        [product],
        {},
        {
          name: fresh('quant'),
          domain: MS_DOMAIN,
        },
      ),
    );
  } else {
    // The exact shape onnxruntime fuses: Mul(Cast(MatMulInteger), Mul(x_scale, w_scale)) with the
    // weight scale second becomes MatMulIntegerToFloat (taking a following bias Add along), and a
    // DynamicQuantizeLinear whose three outputs feed only it folds in too, into
    // DynamicQuantizeMatMul. Where projections share an input (Q, K, V), onnxruntime merges their
    // identical DynamicQuantizeLinear nodes and keeps MatMulIntegerToFloat: the input is then
    // quantized once for all three.
    const [xq, xs, xz] = [fresh('x_quantized'), fresh('x_scale'), fresh('x_zero_point')];
    const [acc, accF, scale] = [fresh('int32'), fresh('float'), fresh('scale')];
    out.push(
      node('DynamicQuantizeLinear', [input], [xq, xs, xz], {}, fresh('quantize_x')),
      node('MatMulInteger', [xq, w.qName, xz, w.zeroName], [acc], {}, fresh('matmul_integer')),
      node('Cast', [acc], [accF], { to: TensorProto_DataType.FLOAT }, fresh('cast')),
      node('Mul', [xs, w.scaleName], [scale], {}, fresh('scale_product')),
      node('Mul', [accF, scale], [product], {}, fresh('rescale')),
    );
  }
  if (bias.add) out.push(node('Add', [product, bias.add], [y], {}, fresh('bias')));
  return { nodes: out, replaced: bias.replaces ? [resolved, bias.replaces] : [resolved] };
};

/**
 * Gather over a constant float table (an embedding) reads int8 rows and dequantizes only those:
 * the table shrinks 4× and the run-time cost is one elementwise op on the gathered rows.
 */
const rewriteGather = (
  n: NodeProto,
  table: ConstWeight,
  rw: Rewriter,
  opset: number,
  minElements: number,
): Rewrite | string => {
  if (opset < 10) return 'DequantizeLinear needs ai.onnx opset 10';
  const t = rw.table(table, minElements);
  if (typeof t === 'string') return t;
  const base = label(n);
  const gathered = rw.names.fresh(`${base}_quantized`);
  const copy = node('Gather', [t.qName, ...n.input.slice(1)], [gathered], {}, rw.names.fresh(base));
  copy.attribute = n.attribute;
  const dequantize = node(
    'DequantizeLinear',
    [gathered, t.scaleName, t.zeroName],
    [n.output[0] ?? ''],
    {},
    rw.names.fresh(`${base}_dequantize`),
  );
  return { nodes: [copy, dequantize], replaced: [table] };
};

/**
 * The weights `signedShare` stores signed: the largest first (by element count, then graph
 * order) until they hold `share` of the elements of every weight the rewrite would quantize.
 * What the variant ends up holding signed is counted after the rewrite (`signedHeld`).
 */
const signedSources = (
  nodes: readonly NodeProto[],
  analysis: Analysis,
  minElements: number,
  share: number,
): Set<string> => {
  const sources = new Set<string>();
  if (!(share > 0)) return sources;
  const sizes = new Map<string, number>();
  for (const n of nodes) {
    const r = resolveConstant(n.input[1] ?? '', analysis);
    if (r.kind !== 'const' || sizes.has(r.source)) continue;
    const shape = float32Shape(r.tensor);
    if (shape.ok && shape.dims.length === 2 && shape.elements >= minElements) {
      sizes.set(r.source, shape.elements);
    }
  }
  let total = 0;
  for (const v of sizes.values()) total += v;
  // a stable sort: equal sizes keep graph order
  const order = [...sizes].sort((a, b) => b[1] - a[1]);
  let held = 0;
  for (const [source, elements] of order) {
    if (held >= share * total) break;
    sources.add(source);
    held += elements;
  }
  return sources;
};

/**
 * What the variant really holds signed: the weights stored signed (counted once whatever their
 * orientations), of all the weights stored int8, and the share of those weights' elements. A
 * weight `signedSources` picked may stay float (non-finite values) or be dropped with a node given
 * up on late (a Gemm's bias); counting the picks would report signed weights the variant lacks.
 */
const signedHeld = (
  made: Rewriter['made'],
  kept: ReadonlySet<string>,
): { weights: number; of: number; share: number } => {
  const sources = new Map<string, { elements: number; signed: boolean }>();
  for (const [name, m] of made) {
    if (!kept.has(name) || sources.has(m.source)) continue;
    sources.set(m.source, { elements: m.elements, signed: m.signed });
  }
  let total = 0;
  let held = 0;
  let weights = 0;
  for (const { elements, signed } of sources.values()) {
    total += elements;
    if (!signed) continue;
    held += elements;
    weights++;
  }
  return { weights, of: sources.size, share: total > 0 ? held / total : 0 };
};

/** A result without a variant, and why (for the report). */
export const notApplied = (
  started: number,
  reason: string,
  scheme: string,
  nodes: QuantizedNodeReport[],
): QuantizeResult => ({
  bytes: undefined,
  report: {
    scheme,
    status: 'not-applied',
    reason,
    nodes,
    nodesQuantized: 0,
    nodesSkipped: nodes.length,
    quantizeMs: performance.now() - started,
  },
});

/**
 * Drops the float weights the rewrite left unread (and the Identity/Transpose/Constant nodes in
 * front of them), walking each chain from its use towards the stored tensor.
 */
export const pruneUnused = (
  g: GraphProto,
  chains: ConstWeight[],
  a: Analysis,
  added: TensorProto[],
) => {
  const uses = countUses(g);
  const dropNodes = new Set<NodeProto>();
  const dropValues = new Set<string>();
  // A node that failed late (its Gemm bias) may leave its already-made int8 weight unread.
  for (const t of added) if ((uses.get(t.name) ?? 0) === 0) dropValues.add(t.name);
  for (const c of chains) {
    for (const name of [...c.via, c.source]) {
      if (dropValues.has(name)) continue;
      if ((uses.get(name) ?? 0) > 0) break;
      dropValues.add(name);
      const producer = a.producers.get(name);
      if (producer) {
        dropNodes.add(producer);
        for (const i of producer.input) if (i !== '') uses.set(i, (uses.get(i) ?? 1) - 1);
      }
    }
  }
  g.node = g.node.filter((n) => !dropNodes.has(n));
  g.initializer = g.initializer.filter((t) => !dropValues.has(t.name));
  g.input = g.input.filter((v) => !dropValues.has(v.name));
  g.valueInfo = g.valueInfo.filter((v) => !dropValues.has(v.name));
};

/**
 * Dynamic int8 quantization of the constant weights of MatMul and Gemm. Activations are quantized
 * at run time per tensor (uint8), weights ahead of time per output channel (int8, symmetric,
 * stored as uint8 around 128).
 * Constant float tables read by Gather (embeddings) are stored int8 per tensor as well: in an
 * encoder they are the largest float left once the projections are int8.
 * From ai.onnx opset 11 the rewrite uses standard ops that onnxruntime fuses; below it, the
 * com.microsoft DynamicQuantizeMatMul contrib op, since the model's opset is never raised. Graph
 * inputs, outputs and every name downstream of a rewritten node stay as they were.
 */
export const quantizeModel = (bytes: Uint8Array, options: QuantizeOptions = {}): QuantizeResult => {
  try {
    return quantizeDynamic(bytes, options);
  } finally {
    dropTransientBuffer();
  }
};

const quantizeDynamic = (bytes: Uint8Array, options: QuantizeOptions): QuantizeResult => {
  const started = performance.now();
  const minElements = options.minElements ?? DEFAULT_MIN_ELEMENTS;
  const excluded = new Set(options.excludeNodes ?? []);
  const model: ModelProto = parseModel(bytes);
  const g = model.graph;
  const opset = Number(model.opsetImport.find((o) => isAiOnnx(o.domain))?.version ?? 0);
  const useContribOp = opset < 11;
  const scheme = useContribOp ? SCHEME_DYNAMIC_QUANTIZE_MATMUL : SCHEME_MATMUL_INTEGER;
  if (!g) return notApplied(started, 'model has no graph', scheme, []);
  if (opset === 0) return notApplied(started, 'model imports no ai.onnx opset', scheme, []);

  const analysis: Analysis = {
    irVersion: Number(model.irVersion),
    initializers: new Map(g.initializer.map((t) => [t.name, t])),
    sparse: new Set(g.sparseInitializer.flatMap((s) => (s.values ? [s.values.name] : []))),
    producers: new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const))),
    graphInputs: new Set(g.input.map((v) => v.name)),
  };
  const candidate = (n: NodeProto) =>
    (n.opType === 'MatMul' || n.opType === 'Gemm') && isAiOnnx(n.domain);
  const isExcluded = (n: NodeProto) => excluded.has(n.name) || excluded.has(n.output[0] ?? '');
  const signed = signedSources(
    g.node.filter((n) => candidate(n) && !isExcluded(n)),
    analysis,
    minElements,
    options.signedShare ?? 0,
  );
  const rw = new Rewriter(g, analysis, useContribOp, signed);
  const reports: QuantizedNodeReport[] = [];
  const rewritten: ConstWeight[] = [];
  const nodes: NodeProto[] = [];
  /** the constant float table a Gather reads, when it reads one: other Gathers are not weights */
  const embedding = (n: NodeProto) => {
    if (n.opType !== 'Gather' || !isAiOnnx(n.domain)) return undefined;
    const r = resolveConstant(n.input[0] ?? '', analysis);
    return r.kind === 'const' && r.tensor.dataType === TensorProto_DataType.FLOAT ? r : undefined;
  };

  for (const n of g.node) {
    for (const sub of subgraphsOf(n)) {
      walkNodes(sub, (inner) => {
        if (candidate(inner)) {
          const reason = `inside a subgraph of ${n.opType} ${label(n)}: left in float`;
          reports.push({ node: label(inner), opType: inner.opType, action: 'skipped', reason });
        }
      });
    }
    const table = embedding(n);
    if (!candidate(n) && !table) {
      nodes.push(n);
      continue;
    }
    const skip = (reason: string) => {
      reports.push({ node: label(n), opType: n.opType, action: 'skipped', reason });
      nodes.push(n);
    };
    if (isExcluded(n)) {
      skip('excluded by options.excludeNodes');
      continue;
    }
    const result = table
      ? rewriteGather(n, table, rw, opset, minElements)
      : rewriteNode(n, rw, opset, minElements);
    if (typeof result === 'string') {
      skip(result);
      continue;
    }
    rewritten.push(...result.replaced);
    reports.push({ node: label(n), opType: n.opType, action: 'quantized' });
    nodes.push(...result.nodes);
  }

  const quantized = reports.filter((r) => r.action === 'quantized').length;
  if (quantized === 0) {
    const reason =
      reports.length === 0
        ? 'model has no MatMul or Gemm node and no Gather over a constant float table'
        : 'no MatMul, Gemm or Gather node has a constant float32 weight worth quantizing (see nodes)';
    return notApplied(started, reason, scheme, reports);
  }

  g.node = nodes;
  g.initializer.push(...rw.newInitializers);
  pruneUnused(g, rewritten, analysis, rw.newInitializers);
  const held = signedHeld(rw.made, new Set(g.initializer.map((t) => t.name)));
  if (useContribOp && !model.opsetImport.some((o) => o.domain === MS_DOMAIN)) {
    model.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n }));
  }
  return encodedResult(model, (size) => ({
    scheme: held.weights === 0 ? scheme : mixedScheme(scheme, held.weights, held.of, held.share),
    ...(held.weights === 0 ? {} : { signedWeights: held }),
    status: 'applied',
    nodes: reports,
    nodesQuantized: quantized,
    nodesSkipped: reports.length - quantized,
    sizeRatio: size / bytes.byteLength,
    quantizeMs: performance.now() - started,
  }));
};
