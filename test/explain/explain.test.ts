import { describe, expect, it } from 'vitest';
import {
  type Evaluate,
  EXPLAIN_DEFAULTS,
  type ExplainInput,
  type ExplainOptions,
  ExplainParameterError,
  ExplanationTooCostlyError,
  explain,
} from '../../src/explain/index.ts';
import { mulberry32 } from '../../src/util/index.ts';

const DEFAULT_BUDGET = EXPLAIN_DEFAULTS.defaultBudget;

const options = (over: Partial<ExplainOptions> = {}): ExplainOptions => ({
  method: 'kernel-shap',
  budget: DEFAULT_BUDGET,
  seed: 7,
  batchSize: 16,
  ...over,
});

/** A scalar function of one flat input, lifted to the batched evaluator the methods call. */
const lift =
  (f: (x: Float64Array) => number, calls: { n: number } = { n: 0 }): Evaluate =>
  async (batch) =>
    batch.map((item) => {
      calls.n++;
      return f(item[0] ?? new Float64Array(0));
    });

const single = (x: number[], baseline: number[], shape = [x.length]): ExplainInput[] => [
  { name: 'x', shape, x: Float64Array.from(x), baseline: Float64Array.from(baseline) },
];

const linear = (w: number[], b: number) => (x: Float64Array) =>
  w.reduce((sum, wi, i) => sum + wi * (x[i] ?? 0), b);

const randomVector = (n: number, seed: number, scale = 2): number[] => {
  const random = mulberry32(seed);
  return Array.from({ length: n }, () => (random() * 2 - 1) * scale);
};

const sum = (values: Float64Array[]): number =>
  values.reduce((s, a) => s + a.reduce((t, v) => t + v, 0), 0);

describe('KernelSHAP on a linear model', () => {
  it('gives w_i (x_i - baseline_i) exactly when every coalition fits the budget', async () => {
    const w = randomVector(6, 1);
    const x = randomVector(6, 2);
    const base = randomVector(6, 3);
    const f = linear(w, 0.5);
    const out = await explain(single(x, base), f(Float64Array.from(x)), lift(f), options());
    expect(out.mode).toBe('exact');
    expect(out.evaluations).toBe(64);
    out.attributions[0]?.forEach((a, i) => {
      expect(Math.abs(a - (w[i] ?? 0) * ((x[i] ?? 0) - (base[i] ?? 0)))).toBeLessThan(1e-4);
    });
    expect(out.baseValue).toBeCloseTo(f(Float64Array.from(base)), 10);
  });

  it('gives w_i (x_i - baseline_i) within 1e-2 from sampled coalitions at the default budget', async () => {
    const w = randomVector(40, 4);
    const x = randomVector(40, 5);
    const base = new Array<number>(40).fill(0);
    const f = linear(w, -1);
    const calls = { n: 0 };
    const out = await explain(single(x, base), f(Float64Array.from(x)), lift(f, calls), options());
    expect(out.mode).toBe('sampled');
    expect(out.evaluations).toBeLessThanOrEqual(DEFAULT_BUDGET);
    expect(calls.n + 1).toBe(out.evaluations);
    out.attributions[0]?.forEach((a, i) => {
      expect(Math.abs(a - (w[i] ?? 0) * (x[i] ?? 0))).toBeLessThan(1e-2);
    });
  });
});

const nonlinear = (x: Float64Array): number => {
  let s = 0;
  for (let i = 0; i + 1 < x.length; i++) s += Math.tanh((x[i] ?? 0) * (x[i + 1] ?? 0));
  return 3 * Math.exp(-((x[0] ?? 0) ** 2)) + s + (x[2] ?? 0) ** 3;
};

describe('KernelSHAP efficiency', () => {
  it.each([5, 12, 60, 200])(
    'attributions over %i features sum to f(x) - f(baseline)',
    async (n) => {
      const x = randomVector(n, 10 + n);
      const base = randomVector(n, 20 + n, 0.5);
      const fx = nonlinear(Float64Array.from(x));
      const out = await explain(single(x, base), fx, lift(nonlinear), options({ method: 'auto' }));
      const fb = nonlinear(Float64Array.from(base));
      expect(out.baseValue).toBeCloseTo(fb, 10);
      expect(Math.abs(sum(out.attributions) - (fx - fb))).toBeLessThan(
        1e-4 * Math.max(1, Math.abs(fx)),
      );
      expect(out.evaluations).toBeLessThanOrEqual(DEFAULT_BUDGET);
    },
  );

  it('splits a pure interaction evenly between its two players (exact Shapley)', async () => {
    const f = (x: Float64Array) => (x[0] ?? 0) * (x[1] ?? 0) + 2 * (x[2] ?? 0);
    const out = await explain(single([2, 3, 1], [0, 0, 0]), 8, lift(f), options());
    expect(Array.from(out.attributions[0] ?? [])).toEqual([3, 3, 2]);
  });

  it('sampled values approach the exact ones on a model with interactions', async () => {
    const x = randomVector(12, 31);
    const base = new Array<number>(12).fill(0);
    const fx = nonlinear(Float64Array.from(x));
    const exact = await explain(single(x, base), fx, lift(nonlinear), options({ budget: 5000 }));
    const sampled = await explain(single(x, base), fx, lift(nonlinear), options({ budget: 1024 }));
    expect(exact.mode).toBe('exact');
    expect(sampled.mode).toBe('sampled');
    const e = exact.attributions[0] ?? new Float64Array(0);
    const s = sampled.attributions[0] ?? new Float64Array(0);
    const worst = Math.max(...e.map((v, i) => Math.abs(v - (s[i] ?? 0))));
    expect(worst).toBeLessThan(0.05);
  });

  it('is reproducible for a seed', async () => {
    const x = randomVector(50, 3);
    const base = new Array<number>(50).fill(0);
    const fx = nonlinear(Float64Array.from(x));
    const a = await explain(single(x, base), fx, lift(nonlinear), options({ seed: 3 }));
    const b = await explain(single(x, base), fx, lift(nonlinear), options({ seed: 3 }));
    expect(Array.from(a.attributions[0] ?? [])).toEqual(Array.from(b.attributions[0] ?? []));
  });
});

describe('grouped players', () => {
  it('treats each window tile as one player and spreads its value over the tile', async () => {
    // 4×4 input, 2×2 windows: 4 players, exact; a linear model's group value is the sum of its terms
    const w = randomVector(16, 8);
    const x = randomVector(16, 9);
    const base = new Array<number>(16).fill(0);
    const f = linear(w, 0);
    const out = await explain(
      single(x, base, [4, 4]),
      f(Float64Array.from(x)),
      lift(f),
      options({ windows: [[2, 2]] }),
    );
    expect(out.players).toBe(4);
    expect(out.mode).toBe('exact');
    const a = out.attributions[0] ?? new Float64Array(0);
    const tile = [0, 1, 4, 5];
    const expected = tile.reduce((s, i) => s + (w[i] ?? 0) * (x[i] ?? 0), 0) / 4;
    for (const i of tile) expect(a[i]).toBeCloseTo(expected, 8);
  });

  it('auto groups a large input into players the budget affords, still efficient', async () => {
    const n = 3000;
    const x = randomVector(n, 40);
    const base = new Array<number>(n).fill(0);
    const f = (v: Float64Array) => v.reduce((s, e, i) => s + Math.sin(e) * (i % 7), 0);
    const fx = f(Float64Array.from(x));
    const out = await explain(single(x, base), fx, lift(f), options({ method: 'auto' }));
    expect(out.grouping).toBe('auto-groups');
    expect(out.players).toBeLessThan(DEFAULT_BUDGET);
    expect(Math.abs(sum(out.attributions) - (fx - f(Float64Array.from(base))))).toBeLessThan(
      1e-4 * Math.max(1, Math.abs(fx)),
    );
  });
});

describe('occlusion', () => {
  it('gives the region that alone drives the output the largest attributions', async () => {
    // 12×12 image; only rows 4..7, cols 8..11 matter
    const shape = [12, 12];
    const x = randomVector(144, 50).map((v) => Math.abs(v) + 0.5);
    const base = new Array<number>(144).fill(0);
    const inRegion = (i: number) =>
      Math.floor(i / 12) >= 4 && Math.floor(i / 12) < 8 && i % 12 >= 8;
    const f = (v: Float64Array) => v.reduce((s, e, i) => s + (inRegion(i) ? e : 0), 0);
    const out = await explain(
      single(x, base, shape),
      f(Float64Array.from(x)),
      lift(f),
      options({ method: 'occlusion', windows: [[4, 4]] }),
    );
    expect(out.method).toBe('occlusion');
    expect(out.evaluations).toBe(9 + 2);
    const a = out.attributions[0] ?? new Float64Array(0);
    const region = Array.from(a).filter((_, i) => inRegion(i));
    const rest = Array.from(a).filter((_, i) => !inRegion(i));
    expect(Math.min(...region)).toBeGreaterThan(0);
    expect(Math.max(...rest.map(Math.abs))).toBe(0);
  });

  it('averages overlapping windows when the stride is smaller than the window', async () => {
    const f = (v: Float64Array) => v[3] ?? 0;
    const out = await explain(
      single([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]),
      1,
      lift(f),
      options({ method: 'occlusion', windows: [[2]], strides: [[1]] }),
    );
    const a = Array.from(out.attributions[0] ?? []);
    expect(a[3]).toBeCloseTo(0.5);
    expect(a[0]).toBe(0);
    expect(out.players).toBe(5);
  });

  it('refuses a stride larger than its window, which would leave elements unexplained', async () => {
    const f = (v: Float64Array) => v[2] ?? 0;
    const request = explain(
      single([1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]),
      1,
      lift(f),
      options({ method: 'occlusion', windows: [[2]], strides: [[3]] }),
    );
    await expect(request).rejects.toBeInstanceOf(ExplainParameterError);
    await expect(request).rejects.toThrow(/stride \[3\].*larger than its window \[2\]/);
  });
});

describe('the prediction evaluated with the coalitions', () => {
  const x = randomVector(5, 41);
  const base = randomVector(5, 42);
  const fx = nonlinear(Float64Array.from(x));
  const cases = [
    ['exact KernelSHAP', options()],
    ['sampled KernelSHAP', options({ budget: 40 })],
    ['occlusion', options({ method: 'occlusion' })],
  ] as const;

  it.each(cases)(
    '%s: x is the first item of the first batch, and the answer is the one given f(x)',
    async (_, opts) => {
      const batches: Float64Array[][][] = [];
      const recording: Evaluate = async (batch) => {
        batches.push(batch);
        return lift(nonlinear)(batch);
      };
      const given = await explain(single(x, base), fx, lift(nonlinear), opts);
      const folded = await explain(single(x, base), undefined, recording, opts);
      expect(Array.from(batches[0]?.[0]?.[0] ?? [])).toEqual(x);
      expect(folded.prediction).toBe(fx);
      expect(folded.evaluations).toBe(given.evaluations);
      expect(folded.baseValue).toBe(given.baseValue);
      expect(Array.from(folded.attributions[0] ?? [])).toEqual(
        Array.from(given.attributions[0] ?? []),
      );
      // every evaluation is in a batch exactly once, and the batches are what the explainer says
      expect(folded.batches).toEqual(batches.map((b) => b.length));
      expect(folded.batches.reduce((a, b) => a + b, 0)).toBe(folded.evaluations);
      expect(given.batches.reduce((a, b) => a + b, 0)).toBe(given.evaluations - 1);
    },
  );

  it('runs x alone first when asked for a first batch of one', async () => {
    const out = await explain(
      single(x, base),
      undefined,
      lift(nonlinear),
      options({ batchSize: 16, firstBatch: 1 }),
    );
    expect(out.evaluations).toBe(32);
    expect(out.batches).toEqual([1, 16, 15]);
  });
});

describe('refusals', () => {
  it('refuses a window larger than the input, naming the sizes that fit', async () => {
    await expect(
      explain(
        single([1, 2, 3], [0, 0, 0]),
        0,
        lift(() => 0),
        options({ windows: [[4]] }),
      ),
    ).rejects.toThrow(ExplainParameterError);
  });

  it('refuses occlusion whose windows exceed the budget, naming the budget that fits', async () => {
    const x = new Array<number>(100).fill(1);
    const err = await explain(
      single(x, x, [10, 10]),
      0,
      lift(() => 0),
      options({ method: 'occlusion', budget: 20, windows: [[2, 2]] }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExplanationTooCostlyError);
    expect((err as Error).message).toContain('at least 27');
  });

  it('refuses KernelSHAP over more windows than the budget can sample', async () => {
    const x = new Array<number>(100).fill(1);
    await expect(
      explain(
        single(x, x, [10, 10]),
        0,
        lift(() => 0),
        options({ budget: 30, windows: [[1, 1]] }),
      ),
    ).rejects.toThrow(/budget of at least 202/);
  });
});
