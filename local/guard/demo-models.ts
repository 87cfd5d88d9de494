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
 * Three versions of one model for the guard's demo and tests, same signature (`x` FP32
 * [batch, 4] → `y` FP32 [batch, 4]): a healthy one, and two that pass ingest on samples whose
 * values stay below 3 but go wrong on real traffic whose values reach 6.
 */

/**
 * `y = x + trips` by a Loop adding 1 per iteration: a run costs about 1 µs of one core per trip,
 * whatever the input's size, and no shape check can see it. `dims` is the shape of `x` and `y`.
 */
export const countingLoop = (dims: (number | string)[] = ['batch', 4]) =>
  node('Loop', ['trips', '', 'x'], ['y'], {
    body: graph({
      name: 'body',
      nodes: [
        node('Identity', ['cond_in'], ['cond_out']),
        node('Add', ['acc_in', 'one'], ['acc_out']),
      ],
      inputs: [
        valueInfo('i', T.INT64, []),
        valueInfo('cond_in', T.BOOL, []),
        valueInfo('acc_in', T.FLOAT, dims),
      ],
      outputs: [valueInfo('cond_out', T.BOOL, []), valueInfo('acc_out', T.FLOAT, dims)],
      initializers: [tensor('one', T.FLOAT, [1], [1])],
    }),
  });

const io = {
  inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
  outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
};

/** `y = 2x`: the version that keeps serving. */
export const healthyModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'healthy',
        nodes: [node('Mul', ['x', 'two'], ['y'])],
        initializers: [tensor('two', T.FLOAT, [], [2])],
        ...io,
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );

/**
 * `y = 2x + 0 · table[int(x)]`: a lookup whose index comes from the input values, as an embedding
 * takes token ids. The table has 4 rows, so any element at 4 or above makes onnxruntime refuse
 * the run ("indices element out of data bounds"): samples in [0, 4) pass, real inputs in [0, 6)
 * fail in 4 requests out of 5.
 */
export const lookupModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'lookup',
        nodes: [
          node('Cast', ['x'], ['ids'], { to: T.INT64 }),
          node('Gather', ['table', 'ids'], ['rows'], { axis: 0 }),
          node('ReduceSum', ['rows', 'last'], ['looked_up'], { keepdims: 0 }),
          node('Mul', ['looked_up', 'zero'], ['nothing']),
          node('Mul', ['x', 'two'], ['doubled']),
          node('Add', ['doubled', 'nothing'], ['y']),
        ],
        initializers: [
          tensor('table', T.FLOAT, [4, 1], [1, 2, 3, 4]),
          tensor('last', T.INT64, [1], [2]),
          tensor('zero', T.FLOAT, [], [0]),
          tensor('two', T.FLOAT, [], [2]),
        ],
        ...io,
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );

/**
 * `y = 2x + 0 · sum(ones[n, 1024] · W · W)` with `n = 1000 · max(0, max(x) - 3)`: work that grows
 * with an input value, as a loop whose trip count comes from the request. Samples below 3 cost
 * nothing; real inputs up to 6 multiply a matrix of up to 3000 rows twice, hundreds of ms.
 */
export const slowModel = (width = 1024): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'slow',
        nodes: [
          node('ReduceMax', ['x'], ['peak'], { keepdims: 0 }),
          node('Sub', ['peak', 'three'], ['over']),
          node('Relu', ['over'], ['excess']),
          node('Mul', ['excess', 'thousand'], ['rows_f']),
          node('Cast', ['rows_f'], ['rows'], { to: T.INT64 }),
          node('Unsqueeze', ['rows', 'axis0'], ['rows_1d']),
          node('Concat', ['rows_1d', 'width'], ['shape'], { axis: 0 }),
          node('ConstantOfShape', ['shape'], ['ones'], {
            value: tensor('one', T.FLOAT, [1], [1]),
          }),
          node('MatMul', ['ones', 'w'], ['h1']),
          node('MatMul', ['h1', 'w'], ['h2']),
          node('ReduceSum', ['h2'], ['total'], { keepdims: 0 }),
          node('Mul', ['total', 'zero'], ['nothing']),
          node('Mul', ['x', 'two'], ['doubled']),
          node('Add', ['doubled', 'nothing'], ['y']),
        ],
        initializers: [
          tensor('three', T.FLOAT, [], [3]),
          tensor('thousand', T.FLOAT, [], [1000]),
          tensor('axis0', T.INT64, [1], [0]),
          tensor('width', T.INT64, [1], [width]),
          tensor('w', T.FLOAT, [width, width], new Float32Array(width * width).fill(1 / width)),
          tensor('zero', T.FLOAT, [], [0]),
          tensor('two', T.FLOAT, [], [2]),
        ],
        ...io,
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );

/** A V2 request body for `x` of one row. */
export const inferBody = (row: readonly number[]): string =>
  JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: row }] });

/** Sample values that every version handles: what ingest warms up on. */
export const sampleRow = (random: () => number): number[] =>
  Array.from({ length: 4 }, () => random() * 2.9);

/** Real traffic: values up to 6, where the bad versions go wrong. */
export const trafficRow = (random: () => number): number[] =>
  Array.from({ length: 4 }, () => random() * 6);

/**
 * `y = x + trips` by a Loop whose trip count comes from the request: `200,000 × max(0, max(x) -
 * 3)` iterations of about 8 µs each (measured on 2 shared cores). Samples below 3 cost nothing (it
 * passes ingest); inputs from 5 to 6 run for 3 to 5 s each, as a model that hangs on real
 * traffic does.
 */
export const hangingModel = (perUnit = 200_000): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'hanging',
        nodes: [
          node('ReduceMax', ['x'], ['peak'], { keepdims: 0 }),
          node('Sub', ['peak', 'three'], ['over']),
          node('Relu', ['over'], ['excess']),
          node('Mul', ['excess', 'per_unit'], ['trips_f']),
          node('Cast', ['trips_f'], ['trips'], { to: T.INT64 }),
          countingLoop(),
        ],
        initializers: [
          tensor('three', T.FLOAT, [], [3]),
          tensor('per_unit', T.FLOAT, [], [perUnit]),
        ],
        ...io,
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );

/**
 * `y = x + trips` by a Loop of a fixed trip count: every request pays it, samples included (12,000
 * trips: about 100 ms, hundreds of times the healthy model's fraction of a millisecond).
 */
export const uniformlySlowModel = (trips = 12_000): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'uniformly_slow',
        nodes: [countingLoop()],
        initializers: [tensor('trips', T.INT64, [], [trips])],
        ...io,
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );
