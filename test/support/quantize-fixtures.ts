import * as ort from 'onnxruntime-node';
import {
  encodeModel,
  graph,
  model,
  type NodeProto,
  node,
  type OpsetImport,
  type TensorProto,
  TensorProto_DataType,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import { gaussian, mulberry32 } from '../../src/util/index.ts';

const FLOAT = TensorProto_DataType.FLOAT;

/** Deterministic N(0, std²) values. */
export const randomFloats = (count: number, seed: number, std = 1): Float32Array => {
  const next = gaussian(mulberry32(seed));
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = next() * std;
  return out;
};

const weight = (
  name: string,
  rows: number,
  cols: number,
  seed: number,
  fanIn = rows,
  first?: number,
) => {
  const values = randomFloats(rows * cols, seed, 1 / Math.sqrt(fanIn));
  if (first !== undefined) values[0] = first;
  return tensor(name, FLOAT, [rows, cols], values);
};

export interface MlpSpec {
  /** layer widths, input first: [256, 512, 256] is two MatMul+Add layers with a Relu between */
  widths: readonly number[];
  opset?: number;
  seed?: number;
  /**
   * when set, row 0 of the first weight is ±outlier: input feature 0 carries huge weights (a feature
   * the samples leave at 0, so fp32 outputs stay sane) that set every column's int8 scale, leaving
   * the ordinary weights a handful of levels. Quantization wrecks such a model.
   */
  outlier?: number;
}

/** x [batch, widths[0]] → (MatMul → Add → Relu)* → y [batch, widths.at(-1)], all fp32. */
export const mlpModel = ({ widths, opset = 17, seed = 1, outlier }: MlpSpec): Uint8Array => {
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  let current = 'x';
  for (let l = 0; l + 1 < widths.length; l++) {
    const [k = 0, n = 0] = [widths[l], widths[l + 1]];
    const values = randomFloats(k * n, seed * 100 + l, 1 / Math.sqrt(k));
    if (l === 0 && outlier !== undefined) {
      for (let c = 0; c < n; c++) values[c] = c % 2 === 0 ? outlier : -outlier;
    }
    const w = tensor(`w${l}`, FLOAT, [k, n], values);
    initializers.push(w, tensor(`b${l}`, FLOAT, [n], randomFloats(n, seed * 100 + 50 + l, 0.1)));
    const last = l + 2 === widths.length;
    nodes.push(node('MatMul', [current, `w${l}`], [`h${l}`], {}, `layer${l}/MatMul`));
    nodes.push(node('Add', [`h${l}`, `b${l}`], [last ? 'y' : `z${l}`], {}, `layer${l}/Add`));
    if (!last) nodes.push(node('Relu', [`z${l}`], [`a${l}`], {}, `layer${l}/Relu`));
    current = `a${l}`;
  }
  return encodeModel(
    model({
      opset,
      graph: graph({
        nodes,
        initializers,
        inputs: [valueInfo('x', FLOAT, ['batch', widths[0] ?? 0])],
        outputs: [valueInfo('y', FLOAT, ['batch', widths.at(-1) ?? 0])],
      }),
    }),
  );
};

export interface GemmSpec {
  k: number;
  n: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** `row`: C [n]; `matrix`: C [batch, n] as a second graph input; `none`: no C */
  bias?: 'row' | 'matrix' | 'none';
  /** put B (and a row C) in Constant nodes instead of initializers */
  constantNodes?: boolean;
  opset?: number | readonly OpsetImport[];
  irVersion?: number;
  batch?: number;
}

/** One Gemm: y = alpha · op(x) · op(B) + beta · C. */
export const gemmModel = (spec: GemmSpec): Uint8Array => {
  const { k, n, transA = false, transB = false, bias = 'row', batch = 4 } = spec;
  const b = weight('B', transB ? n : k, transB ? k : n, 7, k);
  const c = tensor('C', FLOAT, [n], randomFloats(n, 8, 0.5));
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  if (spec.constantNodes) {
    nodes.push(node('Constant', [], ['B'], { value: b }, 'B_const'));
    if (bias === 'row') nodes.push(node('Constant', [], ['C'], { value: c }, 'C_const'));
  } else {
    initializers.push(b);
    if (bias === 'row') initializers.push(c);
  }
  const attrs: Record<string, number | { f: number }> = {};
  if (transA) attrs.transA = 1;
  if (transB) attrs.transB = 1;
  if (spec.alpha !== undefined) attrs.alpha = { f: spec.alpha };
  if (spec.beta !== undefined) attrs.beta = { f: spec.beta };
  const inputs = [valueInfo('x', FLOAT, transA ? [k, batch] : [batch, k])];
  if (bias === 'matrix') inputs.push(valueInfo('C', FLOAT, [batch, n]));
  const gemmInputs = bias === 'none' ? ['x', 'B'] : ['x', 'B', 'C'];
  nodes.push(node('Gemm', gemmInputs, ['y'], attrs, 'fc'));
  return encodeModel(
    model({
      opset: spec.opset ?? 17,
      ...(spec.irVersion === undefined ? {} : { irVersion: spec.irVersion }),
      graph: graph({
        nodes,
        initializers,
        inputs,
        outputs: [valueInfo('y', FLOAT, [batch, n])],
      }),
    }),
  );
};

/** A model with no MatMul or Gemm: y = Relu(x + 1). */
export const noMatMulModel = (): Uint8Array =>
  encodeModel(
    model({
      opset: 17,
      graph: graph({
        nodes: [node('Add', ['x', 'one'], ['s']), node('Relu', ['s'], ['y'])],
        initializers: [tensor('one', FLOAT, [1], [1])],
        inputs: [valueInfo('x', FLOAT, ['batch', 8])],
        outputs: [valueInfo('y', FLOAT, ['batch', 8])],
      }),
    }),
  );

/** A float32 feed of deterministic N(0, 1) values; `zeroColumn` sets one last-axis index to 0. */
export const floatFeed = (
  dims: readonly number[],
  seed: number,
  zeroColumn?: number,
): ort.Tensor => {
  const values = randomFloats(
    dims.reduce((a, b) => a * b, 1),
    seed,
  );
  const width = dims.at(-1) ?? 1;
  if (zeroColumn !== undefined)
    for (let i = zeroColumn; i < values.length; i += width) values[i] = 0;
  return new ort.Tensor('float32', values, dims);
};

/** Runs a model once on CPU and returns its outputs as Float32Arrays. */
export const runOnce = async (
  bytes: Uint8Array,
  feeds: Record<string, ort.Tensor>,
): Promise<Record<string, Float32Array>> => {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(
      Object.entries(out).map(([name, t]) => [name, Float32Array.from(t.data as Float32Array)]),
    );
  } finally {
    await session.release();
  }
};

export const cosine = (a: Float32Array, b: Float32Array): number => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
};
