import { countingLoop } from '../../../local/guard/demo-models.ts';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../../src/onnx/index.ts';

/**
 * Models that pass static validation (well-formed, allowed ops, sane declared dims) and only show
 * what they are when onnxruntime runs them: the foundation corpus (test/support/hostile-models.ts)
 * covers what validation alone can refuse.
 */

/**
 * `y = x + trips` by a Loop adding 1 per iteration: any run takes ~1 µs × `trips` of one core,
 * however small the input. Its trip count is a constant, invisible to shape checks.
 */
export const slowLoopModel = (trips: number): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'slow_loop',
        nodes: [countingLoop()],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
        initializers: [tensor('trips', T.INT64, [], [trips])],
      }),
      opset: 17,
      producer: 'hardening-hostile',
    }),
  );

/**
 * `y = x + sum(ConstantOfShape(dims))` with `dims` = [2^20, 2^20]: 4 TiB of zeros behind a 4-float
 * output. The shape is a tensor's values, not its dims, so validation's element cap cannot see it.
 */
export const hugeAllocationModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'huge_allocation',
        nodes: [
          node('ConstantOfShape', ['dims'], ['zeros']),
          node('ReduceSum', ['zeros'], ['total'], { keepdims: 0 }),
          node('Add', ['x', 'total'], ['y']),
        ],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
        initializers: [tensor('dims', T.INT64, [2], [2 ** 20, 2 ** 20])],
      }),
      opset: 17,
      producer: 'hardening-hostile',
    }),
  );

/** Declares `y` as FP32 [1, 3] but returns its [1, 5] input unchanged: the signature lies. */
export const lyingShapeModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'lying_shape',
        nodes: [node('Identity', ['x'], ['y'])],
        inputs: [valueInfo('x', T.FLOAT, [1, 5])],
        outputs: [valueInfo('y', T.FLOAT, [1, 3])],
      }),
      opset: 17,
      producer: 'hardening-hostile',
    }),
  );
