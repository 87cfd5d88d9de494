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
import { coupledModel, linearModel } from '../support/explain-models.ts';

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

/** `y = Σ float(ids)` over INT64 [batch, n] → [batch, 1]: integer inputs. */
const idsModel = (): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'ids',
        nodes: [
          node('Cast', ['ids'], ['f'], { to: T.FLOAT }),
          node('ReduceSum', ['f', 'axes'], ['y']),
        ],
        initializers: [tensor('axes', T.INT64, [1], [1])],
        inputs: [valueInfo('ids', T.INT64, ['batch', 'n'])],
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
    probe: linearModel(W, 1),
    dear: linearModel(W, 1),
    learnt: linearModel(W, 1),
    tight: linearModel(W, 1),
    rows: linearModel(W, 1),
    wide: sumModel(),
    ids: idsModel(),
    coupled: coupledModel(),
    nan: linearModel(W, 1),
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
    // the prediction alone, then batches doubling from a probe of 2
    expect(dynamic.body.timing.batches).toEqual([1, 2, 4, 8, 16, 1]);
    expect(runs).toBe(6);
    expect(dynamic.body.attributions[0]?.data).toEqual(fixed.body.attributions[0]?.data);
  });

  it('run the prediction alone the first time, then in the same batch as the perturbed copies', async () => {
    const model = 'folding';
    const first = await explain(model);
    expect(first.status).toBe(200);
    expect(runs).toBe(6);
    expect(first.body.timing.batches).toEqual([1, 2, 4, 8, 16, 1]);
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
    expect(longer.body.timing.batches).toEqual([1, 2, 4, 8, 16, 1]);
    expect(longer.body.attributions[0]?.data).toEqual([1, 2, 3, 4, 5]);
  });

  /**
   * An app on a fake clock whose model runs cost what `cost` says for a batch (its first input's
   * largest value and its batch size), so an explanation's timing decisions can be followed exactly.
   */
  const clocked = (cost: (largest: number, batch: number) => number, maxMs: number) => {
    const clock = { now: 0, runs: [] as number[] };
    const timed = createPredictApp({
      provider: {
        ...counting,
        acquire: async (m, v) => {
          const loaded = await counting.acquire(m, v);
          return {
            ...loaded,
            run: (feeds, names) => {
              const x = feeds.x;
              const batch = x?.dims[0] ?? 1;
              clock.now += cost(Math.max(...((x?.data ?? []) as Float32Array)), batch);
              clock.runs.push(batch);
              return loaded.run(feeds, names);
            },
          };
        },
      },
      explain: { ...EXPLAIN_DEFAULTS, maxMs, marginMs: 0 },
      now: () => clock.now,
    });
    return { app: timed, clock };
  };

  it('grows its batches from a probe, so a batched example dearer than a lone one cannot overrun (found by attack)', async () => {
    // a lone run costs 10 ms, an example inside a batch 30 ms: the prediction alone would have
    // let a batch of 31 (930 ms) start with 500 ms allowed
    const { app: timed, clock } = clocked((_, batch) => (batch === 1 ? 10 : 30 * batch), 500);
    const refused = await explain('probe', {}, { app: timed });
    expect(refused.status).toBe(413);
    // x alone, then a probe of 2 carrying x again (the session's batch-coupling check)
    expect(clock.runs).toEqual([1, 3]);
    expect(clock.now).toBeLessThanOrEqual(500);
    expect(refused.body.error).toMatch(/32 model evaluations at ~\d+\.\d+ ms each/);
    const { app: roomy, clock: roomyClock } = clocked((_, b) => (b === 1 ? 10 : 30 * b), 5000);
    const answered = await explain('probe', {}, { app: roomy });
    expect(answered.status).toBe(200);
    expect(roomyClock.now).toBeLessThanOrEqual(5000);
    expect(answered.body.timing.batches.reduce((a, b) => a + b, 0)).toBe(32);
  });

  it('lets no dear input of one client refuse the cheap one of another through the learnt cost (found by attack)', async () => {
    // runs on a first value over 100 cost 100 ms per example, others 0.01 ms
    const { app: timed, clock } = clocked(
      (largest, batch) => (largest > 100 ? 100 : 0.01) * batch,
      3000,
    );
    const dear = await explain('dear', {}, { app: timed, data: [1000, 1000, 1000, 1000, 1000] });
    expect(dear.status).toBe(413);
    // its probe ran, so the session learnt 150 ms per example
    expect(clock.runs).toEqual([1, 3]);
    expect(clock.now).toBeLessThanOrEqual(3000);
    const cheap = await explain('dear', {}, { app: timed });
    expect(cheap.status).toBe(200);
    expect(cheap.body.evaluations).toBe(32);
  });

  it('refuses after its own probe, naming a budget that fits, when its learnt cost is right', async () => {
    const { app: timed, clock } = clocked((_, batch) => 10 * batch, 400);
    const first = await explain('learnt', {}, { app: timed });
    expect(first.status).toBe(413);
    const before = clock.now;
    const again = await explain('learnt', {}, { app: timed });
    expect(again.status).toBe(413);
    // the cost learnt from the refused one sizes the probe: one run of a single example
    expect(clock.now - before).toBeLessThanOrEqual(20);
    const budget = Number(/budget of at most (\d+)/.exec(again.body.error ?? '')?.[1]);
    expect(budget).toBeGreaterThanOrEqual(2);
    clock.now = 0;
    const fitted = await explain('learnt', { budget }, { app: timed });
    expect(fitted.status).toBe(200);
    expect(clock.now).toBeLessThanOrEqual(400);
  });

  it('says when no budget fits instead of advising one that is refused', async () => {
    // 5 elements by exact KernelSHAP need 32 runs, occlusion 7: at 40 ms each in 200 ms neither fits
    const { app: timed } = clocked((_, batch) => 40 * batch, 200);
    const refused = await explain('tight', { method: 'kernel-shap' }, { app: timed });
    expect(refused.status).toBe(413);
    expect(refused.body.error).toMatch(/no budget .* fits/);
  });
});

describe('attack findings', () => {
  const post = async (path: string, body: unknown, over: { app?: PredictApp } = {}) => {
    runs = 0;
    const res = await (over.app ?? app)({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      query: {},
      body: new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)),
      requestId: 'test',
    });
    return { status: res.status, body: JSON.parse(String(res.body)) as Answer };
  };

  it('gives the rows of a V1 explanation one time allowance between them, not one each', async () => {
    let clock = 0;
    const timed = createPredictApp({
      provider: {
        ...counting,
        acquire: async (m, v) => {
          const loaded = await counting.acquire(m, v);
          return {
            ...loaded,
            run: (feeds, names) => {
              clock += 5 * (feeds.x?.dims[0] ?? 1);
              return loaded.run(feeds, names);
            },
          };
        },
      },
      explain: { ...EXPLAIN_DEFAULTS, maxMs: 400, marginMs: 0 },
      now: () => clock,
    });
    // each row alone needs 32 runs at 5 ms (160 ms): 7 rows would take 1,120 ms of 400
    const instances = Array.from({ length: 7 }, () => [1, 2, 3, 4, 5]);
    const res = await post(
      '/v1/models/rows:explain',
      { instances, parameters: { baseline: 'zeros' } },
      { app: timed },
    );
    expect(res.status).toBe(413);
    expect(clock).toBeLessThanOrEqual(400);
  });

  it('explains a model whose answers depend on their batch one example per run, the same each time', async () => {
    const target = { target: 4, baseline: { x: [0, 0, 0, 0, 9] } };
    const first = await explain('coupled', target);
    expect(first.status).toBe(200);
    // x alone, then one batch that showed x answering differently beside others, then one by one
    expect(first.body.timing.batches[0]).toBe(1);
    expect(first.body.timing.batches.slice(2).every((b) => b === 1)).toBe(true);
    const again = await explain('coupled', target);
    expect(again.body.timing.batches.every((b) => b === 1)).toBe(true);
    expect(again.body.attributions).toEqual(first.body.attributions);
    // f(x) and f(baseline) as each runs alone: 5 ÷ 6 and 9 ÷ 10
    expect(again.body.prediction).toBeCloseTo(5 / 6, 6);
    const sum = again.body.attributions[0]?.data.reduce((a, b) => a + b, 0) ?? 0;
    expect(sum).toBeCloseTo(5 / 6 - 9 / 10, 5);
  });

  it('refuses before any run an input whose attributions could not fit the answer', async () => {
    const small = createPredictApp({
      provider: counting,
      limits: { maxResponseBytes: 50 },
    });
    const res = await explain('dynamic', {}, { app: small });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/attributions of 5 input elements would not fit/);
    expect(runs).toBe(0);
  });

  it('answers 400, not attributions of null, when the output is not finite at the baseline', async () => {
    const res = await explain('nan', { baseline: { x: [3e38, -3e38, 3e38, 3e38, -3e38] } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/not finite at the baseline or at a perturbed copy/);
  });

  it('refuses a V1 request whose rows cannot all fit, after its first row, naming how many do', async () => {
    let clock = 0;
    const timed = createPredictApp({
      provider: {
        ...counting,
        acquire: async (m, v) => {
          const loaded = await counting.acquire(m, v);
          return {
            ...loaded,
            run: (feeds, names) => {
              clock += 1 + (feeds.x?.dims[0] ?? 1);
              return loaded.run(feeds, names);
            },
          };
        },
      },
      explain: { ...EXPLAIN_DEFAULTS, maxMs: 400, marginMs: 0 },
      now: () => clock,
    });
    const instances = Array.from({ length: 20 }, () => [1, 2, 3, 4, 5]);
    const res = await post(
      '/v1/models/rows:explain',
      { instances, parameters: { baseline: 'zeros' } },
      { app: timed },
    );
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/the 20 instances .* send at most \d+ instances per request/);
    // refused once the first row was timed, not after the allowance ran out
    expect(clock).toBeLessThan(100);
  });

  it('refuses a sampled KernelSHAP over more players than its regression takes in time', async () => {
    const res = await explain(
      'wide',
      { method: 'kernel-shap', window: [2], budget: 2048 },
      { data: Array.from({ length: 1000 }, (_, i) => i % 7) },
    );
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/500 windows is more than the 256 players.*larger window/);
    expect(runs).toBe(0);
  });

  it('refuses an INT64 baseline past what a JSON number holds instead of wrapping it', async () => {
    const body =
      '{"inputs":[{"name":"ids","datatype":"INT64","shape":[1,4],"data":[9,9,9,9]}],' +
      '"parameters":{"baseline":{"ids":[1e300,5,5,1]}}}';
    const res = await post('/v2/models/ids/explain', body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(
      /must hold INT64 values from -9007199254740991 to 9007199254740991/,
    );
    expect(runs).toBe(0);
  });

  it('names the window value it refuses instead of "an array of 1"', async () => {
    const res = await post(
      '/v2/models/dynamic/explain',
      '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}],"parameters":{"window":[1e400]}}',
    );
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('[Infinity (out of range)]');
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
