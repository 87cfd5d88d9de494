import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../src/onnx/index.ts';
import { IRIS, IRIS_CLASSES } from './iris-data.ts';

const FEATURES = 4;
const CLASSES = IRIS_CLASSES.length;

export interface IrisWeights {
  /** [FEATURES][CLASSES], acting on raw measurements in cm (standardisation folded in) */
  w: number[][];
  b: number[];
}

const softmax = (z: readonly number[]): number[] => {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / sum);
};

/**
 * Multinomial logistic regression by full-batch gradient descent with a little L2, on
 * standardised features. Deterministic: fixed data order, zero init, fixed step count.
 */
export const trainIris = (): IrisWeights => {
  const mean = Array.from(
    { length: FEATURES },
    (_, j) => IRIS.reduce((a, r) => a + r[j]!, 0) / IRIS.length,
  );
  const std = mean.map((m, j) =>
    Math.sqrt(IRIS.reduce((a, r) => a + (r[j]! - m) ** 2, 0) / IRIS.length),
  );
  const xs = IRIS.map((r) => mean.map((m, j) => (r[j]! - m) / std[j]!));
  const w = Array.from({ length: FEATURES }, () => new Array<number>(CLASSES).fill(0));
  const b = new Array<number>(CLASSES).fill(0);
  const rate = 0.5;
  const l2 = 1e-3;
  for (let step = 0; step < 2000; step++) {
    const gw = Array.from({ length: FEATURES }, () => new Array<number>(CLASSES).fill(0));
    const gb = new Array<number>(CLASSES).fill(0);
    xs.forEach((x, i) => {
      const z = b.map((bk, k) => bk + x.reduce((a, xj, j) => a + xj * w[j]![k]!, 0));
      const p = softmax(z);
      const label = IRIS[i]![4];
      for (let k = 0; k < CLASSES; k++) {
        const err = p[k]! - (k === label ? 1 : 0);
        gb[k]! += err;
        for (let j = 0; j < FEATURES; j++) gw[j]![k]! += err * x[j]!;
      }
    });
    for (let k = 0; k < CLASSES; k++) {
      b[k]! -= (rate * gb[k]!) / xs.length;
      for (let j = 0; j < FEATURES; j++) {
        w[j]![k]! -= rate * (gw[j]![k]! / xs.length + l2 * w[j]![k]!);
      }
    }
  }
  // z = W·((x − μ)/σ) + b = (W/σ)·x + (b − Σ W μ/σ): the served model takes raw centimetres
  return {
    w: w.map((row, j) => row.map((v) => v / std[j]!)),
    b: b.map((bk, k) => bk - w.reduce((a, row, j) => a + (row[k]! * mean[j]!) / std[j]!, 0)),
  };
};

/** Iris classifier: `input` FP32 [batch, 4] → `probabilities` FP32 [batch, 3], `label` INT64 [batch]. */
export const buildIrisModel = (weights: IrisWeights): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'iris_logistic_regression',
        nodes: [
          node('MatMul', ['input', 'weights'], ['scores'], {}, 'matmul'),
          node('Add', ['scores', 'bias'], ['logits'], {}, 'bias_add'),
          node('Softmax', ['logits'], ['probabilities'], { axis: -1 }, 'softmax'),
          node('ArgMax', ['logits'], ['label'], { axis: 1, keepdims: 0 }, 'argmax'),
        ],
        inputs: [valueInfo('input', T.FLOAT, ['batch', FEATURES])],
        outputs: [
          valueInfo('probabilities', T.FLOAT, ['batch', CLASSES]),
          valueInfo('label', T.INT64, ['batch']),
        ],
        initializers: [
          tensor('weights', T.FLOAT, [FEATURES, CLASSES], weights.w.flat()),
          tensor('bias', T.FLOAT, [CLASSES], weights.b),
        ],
      }),
      opset: 13,
      producer: { name: 'onnx-maas', version: 'iris-1' },
    }),
  );

/** What the model computes, in float32 weights like the served file, for the expected outputs. */
export const predictIris = (
  weights: IrisWeights,
  x: readonly number[],
): { probabilities: number[]; label: number } => {
  const f = Math.fround;
  const z = weights.b.map(
    (bk, k) => f(bk) + x.reduce((a, xj, j) => a + f(xj) * f(weights.w[j]![k]!), 0),
  );
  const probabilities = softmax(z);
  return { probabilities, label: z.indexOf(Math.max(...z)) };
};

/** Rows used as sample requests: the first flower of each species, then a batch of six. */
const SAMPLE_ROWS: readonly (readonly number[])[] = [[0], [50], [100], [10, 30, 60, 80, 110, 140]];

export interface V2Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}

export const irisSamples = (): { inputs: V2Tensor[] }[] =>
  SAMPLE_ROWS.map((rows) => ({
    inputs: [
      {
        name: 'input',
        datatype: 'FP32',
        shape: [rows.length, FEATURES],
        data: rows.flatMap((i) => IRIS[i]!.slice(0, FEATURES)),
      },
    ],
  }));

/** Expected V2 outputs for `irisSamples()`, probabilities to 6 significant digits. */
export const irisExpected = (weights: IrisWeights): { outputs: V2Tensor[] }[] =>
  SAMPLE_ROWS.map((rows) => {
    const preds = rows.map((i) => predictIris(weights, IRIS[i]!.slice(0, FEATURES)));
    return {
      outputs: [
        {
          name: 'probabilities',
          datatype: 'FP32',
          shape: [rows.length, CLASSES],
          data: preds.flatMap((p) => p.probabilities.map((v) => Number(v.toPrecision(6)))),
        },
        { name: 'label', datatype: 'INT64', shape: [rows.length], data: preds.map((p) => p.label) },
      ],
    };
  });
