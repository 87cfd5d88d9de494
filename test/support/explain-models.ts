import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';

/**
 * `y = x·w + b` over FP32 [batch, n] → [batch, 1]: KernelSHAP's answer is w_i (x_i − baseline_i).
 * `batch: 1` fixes the first dim, so evaluations cannot be batched and run one after another.
 */
export const linearModel = (
  w: readonly number[],
  b: number,
  batch: 'batch' | 1 = 'batch',
): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'linear',
        nodes: [node('MatMul', ['x', 'w'], ['xw']), node('Add', ['xw', 'b'], ['y'])],
        initializers: [tensor('w', T.FLOAT, [w.length, 1], w), tensor('b', T.FLOAT, [1], [b])],
        inputs: [valueInfo('x', T.FLOAT, [batch, w.length])],
        outputs: [valueInfo('y', T.FLOAT, [batch, 1])],
      }),
      opset: 17,
      producer: 'explain-tests',
    }),
  );

export interface Region {
  rows: [number, number];
  cols: [number, number];
}

export const inRegion = (region: Region, size: number, i: number): boolean => {
  const r = Math.floor(i / size);
  const c = i % size;
  return r >= region.rows[0] && r < region.rows[1] && c >= region.cols[0] && c < region.cols[1];
};

/**
 * A 2-D model over FP32 [batch, 1, size, size] where one region alone drives the output:
 * `y = Σ relu(x · mask)²`, the mask 1 inside `region` and 0 outside, so occlusion must find it.
 */
export const regionModel = (size: number, region: Region): Uint8Array => {
  const mask = Array.from({ length: size * size }, (_, i) => (inRegion(region, size, i) ? 1 : 0));
  return encodeModel(
    model({
      graph: graph({
        name: 'region',
        nodes: [
          node('Mul', ['image', 'mask'], ['masked']),
          node('Relu', ['masked'], ['positive']),
          node('Mul', ['positive', 'positive'], ['squared']),
          node('ReduceSum', ['squared', 'axes'], ['score'], { keepdims: 0 }),
        ],
        initializers: [
          tensor('mask', T.FLOAT, [1, 1, size, size], mask),
          tensor('axes', T.INT64, [3], [1, 2, 3]),
        ],
        inputs: [valueInfo('image', T.FLOAT, ['batch', 1, size, size])],
        outputs: [valueInfo('score', T.FLOAT, ['batch'])],
      }),
      opset: 17,
      producer: 'explain-tests',
    }),
  );
};

/**
 * `y = x ÷ (max |x| over the whole batch + 1)`: an example's answer depends on the others in its
 * batch, as a dynamically quantized MatMul's does (one scale over the batch tensor).
 */
export const coupledModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'coupled',
        nodes: [
          node('Abs', ['x'], ['a']),
          node('ReduceMax', ['a'], ['m']),
          node('Add', ['m', 'one'], ['d']),
          node('Div', ['x', 'd'], ['y']),
        ],
        initializers: [tensor('one', T.FLOAT, [], [1])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 5])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 5])],
      }),
      opset: 17,
      producer: 'explain-tests',
    }),
  );
