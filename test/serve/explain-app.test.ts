import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../src/metrics/index.ts';
import { createPredictApp, type PredictApp } from '../../src/serve/index.ts';
import { SessionProvider } from '../support/conformance-models.ts';
import { linearModel } from '../support/explain-models.ts';

const W = [0.5, -2, 3, 1.25, -0.75];
let provider: SessionProvider;
let app: PredictApp;
let runs = 0;

beforeAll(async () => {
  provider = await SessionProvider.create({
    fixed: linearModel(W, 1, 1),
    dynamic: linearModel(W, 1),
  });
  const counting = {
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

const explain = async (model: string, parameters: Record<string, unknown> = {}) => {
  runs = 0;
  const body = {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }],
    parameters: { baseline: 'zeros', ...parameters },
  };
  const res = await app({
    method: 'POST',
    path: `/v2/models/${model}/explain`,
    headers: { 'content-type': 'application/json' },
    query: {},
    body: new TextEncoder().encode(JSON.stringify(body)),
    requestId: 'test',
  });
  return {
    status: res.status,
    body: JSON.parse(String(res.body)) as {
      evaluations: number;
      attributions: { data: number[] }[];
    },
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
    const dynamic = await explain('dynamic');
    expect(runs).toBe(2);
    expect(dynamic.body.attributions[0]?.data).toEqual(fixed.body.attributions[0]?.data);
  });
});

describe('values past FP32 (found by attack)', () => {
  it('refuses an explicit FP32 baseline FP32 cannot hold, before any perturbed run', async () => {
    const res = await explain('fixed', { baseline: { x: [1e39, 0, 0, 0, 0] } });
    expect(res.status).toBe(400);
    // only the prediction itself ran: the baseline is checked before any evaluation
    expect(runs).toBe(1);
    expect((res.body as unknown as { error: string }).error).toContain('FP32');
  });
});
