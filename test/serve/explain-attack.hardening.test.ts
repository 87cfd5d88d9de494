import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../src/metrics/index.ts';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { SessionProvider } from '../support/conformance-models.ts';
import { coupledModel } from '../support/explain-models.ts';

/**
 * Findings of the third attack on the explain endpoints (a hostile client of the running stack),
 * each through the predict app over real onnxruntime sessions.
 */

/**
 * Two outputs of one input: `p = 2x` answers each example alone, `c = 2x − mean(x over the
 * batch)` depends on the batch (x alone: c = x).
 */
const twoOutputModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'two-outputs',
        nodes: [
          node('Mul', ['x', 'two'], ['p']),
          node('ReduceMean', ['x'], ['mu'], { axes: [0], keepdims: 1 }),
          node('Sub', ['p', 'mu'], ['c']),
        ],
        initializers: [tensor('two', T.FLOAT, [], [2])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('p', T.FLOAT, ['batch', 4]), valueInfo('c', T.FLOAT, ['batch', 4])],
      }),
      opset: 17,
      producer: 'explain-attack',
    }),
  );

/** `y = Σ x` over FP32 [batch, 256]. */
const sumModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'sum',
        nodes: [node('ReduceSum', ['x', 'axes'], ['y'])],
        initializers: [tensor('axes', T.INT64, [1], [1])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 256])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 1])],
      }),
      opset: 17,
      producer: 'explain-attack',
    }),
  );

interface Answer {
  prediction: number;
  base_value: number;
  evaluations: number;
  attributions: { data: number[] }[];
  timing: { batches: number[] };
  error?: string;
}

let provider: SessionProvider;
let app: PredictApp;

beforeAll(async () => {
  provider = await SessionProvider.create({
    coupled: coupledModel(),
    fresh: coupledModel(),
    outputs: twoOutputModel(),
    sum: sumModel(),
  });
  app = createPredictApp({ provider, metrics: new MemoryMetricsSink() });
});
afterAll(() => provider?.release());

const explain = async (model: string, data: number[], parameters: Record<string, unknown>) => {
  const res = await app({
    method: 'POST',
    path: `/v2/models/${model}/explain`,
    headers: { 'content-type': 'application/json' },
    query: {},
    body: new TextEncoder().encode(
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, data.length], data }],
        parameters,
      }),
    ),
    requestId: 'attack',
  });
  return { status: res.status, body: JSON.parse(String(res.body)) as Answer };
};

const sumOf = (answer: Answer): number =>
  answer.attributions.reduce((s, a) => s + a.data.reduce((t, v) => t + v, 0), 0);

describe('batch coupling cannot be vouched for by one client for the others', () => {
  it('learns nothing from a batch of copies all equal to x (a baseline equal to the input)', async () => {
    const x = [1, 2, 3, 4, 5];
    // the attacker: every perturbed copy is x itself, so x answers the same inside its batch
    for (let i = 0; i < 3; i++) {
      const poison = await explain('coupled', x, { baseline: { x } });
      expect(poison.status).toBe(200);
    }
    // the victim's answer must be the one a session nobody poisoned gives
    const parameters = { target: 4, baseline: { x: [0, 0, 0, 0, 9] } };
    const reference = await explain('fresh', x, parameters);
    const victim = await explain('coupled', x, parameters);
    expect(victim.status).toBe(200);
    // f(x) = 5 ÷ 6 as x runs alone (as infer answers it), not 5 ÷ 10 beside a copy holding 9
    expect(victim.body.prediction).toBeCloseTo(5 / 6, 6);
    expect(sumOf(victim.body)).toBeCloseTo(5 / 6 - 9 / 10, 5);
    expect(victim.body.attributions).toEqual(reference.body.attributions);
  });

  it('checks each output apart: an output answering each example alone vouches for no other', async () => {
    const x = [1, 2, 3, 4];
    for (let i = 0; i < 3; i++) {
      const p = await explain('outputs', x, { output: 'p', baseline: 'zeros' });
      expect(p.status).toBe(200);
    }
    const c = await explain('outputs', x, { output: 'c', target: 0, baseline: 'zeros' });
    expect(c.status).toBe(200);
    // x alone: c = 2x − x = x, so c[0] = 1, and c at the zero baseline is 0
    expect(c.body.prediction).toBeCloseTo(1, 6);
    expect(c.body.base_value).toBeCloseTo(0, 6);
    expect(sumOf(c.body)).toBeCloseTo(1, 5);
  });
});

describe('budget advice', () => {
  it('names the smallest budget that explains a large input, not one more', async () => {
    const x = Array.from({ length: 256 }, (_, i) => (i % 7) / 7);
    const refused = await explain('sum', x, { budget: 9 });
    expect(refused.status).toBe(413);
    const advised = Number(/at least (\d+)/.exec(refused.body.error ?? '')?.[1]);
    const fits = await explain('sum', x, { budget: advised });
    expect(fits.status).toBe(200);
    const below = await explain('sum', x, { budget: advised - 1 });
    expect(below.status).toBe(413);
  });
});
