import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPLAIN_DEFAULTS } from '../../src/explain/index.ts';
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
import type { HttpRequest } from '../../src/protocol/index.ts';
import type { ModelProvider } from '../../src/runtime/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { SessionProvider } from '../support/conformance-models.ts';
import { linearModel } from '../support/explain-models.ts';

/** `y = Σ x` over FP32 [batch, n] → [batch, 1]: any sequence length. */
const sumModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'sum',
        nodes: [node('ReduceSum', ['x', 'axes'], ['y'])],
        initializers: [tensor('axes', T.INT64, [1], [1])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 'n'])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 1])],
      }),
      opset: 17,
      producer: 'explain-tests',
    }),
  );

const W = [0.5, -2, 3, 1.25, -0.75];
let provider: SessionProvider;
let app: PredictApp;
let counting: ModelProvider;
let runs = 0;

beforeAll(async () => {
  provider = await SessionProvider.create({
    fixed: linearModel(W, 1, 1),
    dynamic: linearModel(W, 1),
    folding: linearModel(W, 1),
    slow: linearModel(W, 1),
    sum: sumModel(),
  });
  counting = {
    listModels: () => provider.listModels(),
    describe: (m: string, v?: number) => provider.describe(m, v),
    acquire: async (m: string, v?: number) => {
      const loaded = await provider.acquire(m, v);
      return {
        ...loaded,
        run: (feeds: Parameters<typeof loaded.run>[0], names: string[]) => {
          runs++;
          return loaded.run(feeds, names);
        },
      };
    },
  };
  app = createPredictApp({ provider: counting, metrics: new MemoryMetricsSink() });
});
afterAll(() => provider?.release());

interface Answer {
  id?: string;
  output: string;
  evaluations: number;
  attributions: { data: number[] }[];
  prediction: number;
  timing: { batches: number[]; prediction_ms?: number; evaluation_ms: number };
  error?: string;
}

const explain = async (
  model: string,
  parameters: Record<string, unknown> = {},
  over: { app?: PredictApp; request?: Partial<HttpRequest>; id?: string; data?: number[] } = {},
) => {
  runs = 0;
  const body = {
    ...(over.id === undefined ? {} : { id: over.id }),
    inputs: [
      {
        name: 'x',
        datatype: 'FP32',
        shape: [1, over.data?.length ?? 5],
        data: over.data ?? [1, 2, 3, 4, 5],
      },
    ],
    parameters: { baseline: 'zeros', ...parameters },
  };
  const res = await (over.app ?? app)({
    ...over.request,
    method: 'POST',
    path: `/v2/models/${model}/explain`,
    headers: { 'content-type': 'application/json' },
    query: {},
    body: new TextEncoder().encode(JSON.stringify(body)),
    requestId: 'test',
  });
  return {
    status: res.status,
    body: JSON.parse(String(res.body)) as Answer,
  };
};

describe('evaluations', () => {
  it('run one after another when the model has no dynamic batch dim, with the same answer', async () => {
    const fixed = await explain('fixed');
    expect(fixed.status).toBe(200);
    expect(runs).toBe(fixed.body.evaluations);
    expect(fixed.body.evaluations).toBe(32);
    fixed.body.attributions[0]?.data.forEach((a, i) => {
      expect(a).toBeCloseTo((W[i] ?? 0) * (i + 1), 4);
    });
    expect(fixed.body.timing.batches).toEqual(Array.from({ length: 32 }, () => 1));
    const dynamic = await explain('dynamic');
    expect(runs).toBe(2);
    expect(dynamic.body.attributions[0]?.data).toEqual(fixed.body.attributions[0]?.data);
  });

  it('run the prediction alone the first time, then in the same batch as the perturbed copies', async () => {
    const model = 'folding';
    const first = await explain(model);
    expect(first.status).toBe(200);
    expect(runs).toBe(2);
    expect(first.body.timing.batches).toEqual([1, 31]);
    expect(first.body.timing.prediction_ms).toBeGreaterThanOrEqual(0);
    const again = await explain(model);
    expect(again.status).toBe(200);
    expect(runs).toBe(1);
    expect(again.body.timing.batches).toEqual([32]);
    expect(again.body.timing.prediction_ms).toBeUndefined();
    expect(again.body.evaluations).toBe(first.body.evaluations);
    expect(again.body.prediction).toBe(first.body.prediction);
    expect(again.body.attributions).toEqual(first.body.attributions);
    const sum = again.body.attributions[0]?.data.reduce((a, b) => a + b, 0) ?? 0;
    // f(x) − f(zeros) of the linear model: w·x
    expect(sum).toBeCloseTo(
      W.reduce((s, w, i) => s + w * (i + 1), 0),
      4,
    );
  });

  it('learns the cost of each example shape apart: a new length runs its prediction alone', async () => {
    await explain('sum', {}, { data: [1, 2, 3, 4] });
    const known = await explain('sum', {}, { data: [4, 3, 2, 1] });
    expect(known.body.timing.batches).toEqual([16]);
    const longer = await explain('sum', {}, { data: [1, 2, 3, 4, 5] });
    expect(longer.status).toBe(200);
    expect(longer.body.timing.batches).toEqual([1, 31]);
    expect(longer.body.attributions[0]?.data).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses, before any run, a plan its learnt cost says cannot finish in time', async () => {
    // a clock on which every model run takes 10 ms
    let clock = 0;
    const slow = createPredictApp({
      provider: {
        ...counting,
        acquire: async (m, v) => {
          const loaded = await counting.acquire(m, v);
          return {
            ...loaded,
            run: (feeds, names) => {
              clock += 10;
              return loaded.run(feeds, names);
            },
          };
        },
      },
      explain: { ...EXPLAIN_DEFAULTS, marginMs: 0 },
      now: () => clock,
    });
    const learnt = await explain('slow', {}, { app: slow });
    expect(learnt.status).toBe(200);
    expect(learnt.body.timing.batches).toEqual([1, 31]);
    // 31 evaluations took 10 ms: 32 need about 10.3 ms, more than the 8 ms left
    const refused = await explain('slow', {}, { app: slow, request: { deadline: Date.now() + 8 } });
    expect(refused.status).toBe(413);
    expect(runs).toBe(0);
    expect(refused.body.error).toMatch(/send parameters.budget of at most \d+/);
  });
});

describe('the answer', () => {
  it('is JSON that echoes any request id, quotes and line separators included', async () => {
    const id = 'a "quoted" \\ id\u2028with\nlines';
    const res = await explain('dynamic', {}, { id });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(id);
    expect(res.body.output).toBe('y');
    expect(res.body.timing.evaluation_ms).toBeGreaterThanOrEqual(0);
  });
});

describe('values past FP32 (found by attack)', () => {
  it('refuses an explicit FP32 baseline FP32 cannot hold, before any model run', async () => {
    const res = await explain('fixed', { baseline: { x: [1e39, 0, 0, 0, 0] } });
    expect(res.status).toBe(400);
    // nothing ran: the baseline is checked before any evaluation, the prediction included
    expect(runs).toBe(0);
    expect((res.body as unknown as { error: string }).error).toContain('FP32');
  });
});
