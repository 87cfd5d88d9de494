/**
 * Explain benchmark: what an explanation costs beyond the model runs it needs. For Iris (exact
 * KernelSHAP) and the encoder (grouped KernelSHAP at the default budget, two sequence lengths),
 * the time of `POST /v2/models/{m}/explain` through the predict app (codec, planning, coalitions,
 * composing perturbed inputs, regression, response) against the time of the same number of raw
 * `session.run` evaluations batched the same way on the same session, interleaved so a busy
 * machine slows both. Goal: ≤ 1.3×. A second baseline runs the prediction as an ordinary infer
 * request and the rest raw, so a model that runs in microseconds shows what explaining adds beyond
 * what serving any request costs.
 *
 *   npx tsx bench/explain.ts [--quick]
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { ensureExampleModels } from '../models/generate.ts';
import { EXPLAIN_DEFAULTS } from '../src/explain/index.ts';
import { DEFAULT_LIMITS } from '../src/protocol/index.ts';
import { createPredictApp } from '../src/serve/index.ts';
import { SessionProvider } from '../test/support/conformance-models.ts';
import { readJson, toOrtFeeds, type V2Tensor } from '../test/support/models.ts';
import { printTable, writeResults } from './lib/report.ts';

const QUICK = process.argv.includes('--quick');
const REPS = QUICK ? 3 : 7;
const GOAL = 1.3;

interface Case {
  name: string;
  /** repetitions: many for a model that runs in microseconds, so the median is steady */
  reps: number;
  model: 'iris' | 'encoder';
  inputs: V2Tensor[];
  parameters: Record<string, unknown>;
}

interface Explained {
  method: string;
  mode: string;
  players: number;
  evaluations: number;
  output: string;
  timing: { total_ms: number; evaluation_ms: number };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** The input repeated `batch` times along the batch dim, as the explainer feeds its batches. */
const batched = (inputs: readonly V2Tensor[], batch: number): Record<string, ort.Tensor> => {
  const feeds = toOrtFeeds(inputs);
  return Object.fromEntries(
    Object.entries(feeds).map(([name, t]) => {
      const data = t.data as Float32Array | BigInt64Array;
      const out = new (data.constructor as { new (n: number): Float32Array | BigInt64Array })(
        data.length * batch,
      );
      for (let b = 0; b < batch; b++) out.set(data as never, b * data.length);
      return [name, new ort.Tensor(t.type, out, [batch, ...t.dims.slice(1)])];
    }),
  );
};

/** Batch sizes of an explanation's runs: the prediction, then its evaluations in full batches. */
const batchPlan = (evaluations: number, exampleElements: number): number[] => {
  const size = Math.max(
    1,
    Math.min(EXPLAIN_DEFAULTS.maxBatch, Math.floor(DEFAULT_LIMITS.maxElements / exampleElements)),
  );
  const plan = [1];
  for (let left = evaluations - 1; left > 0; left -= size) plan.push(Math.min(size, left));
  return plan;
};

const main = async () => {
  const examples = await ensureExampleModels();
  const provider = await SessionProvider.create({
    iris: examples.iris.path,
    encoder: examples.encoder.path,
  });
  // the time bound is Lambda's business: here the point is the overhead, on a machine of any speed
  const app = createPredictApp({ provider, explain: { ...EXPLAIN_DEFAULTS, maxMs: 600_000 } });
  const irisSamples = await readJson<{ inputs: V2Tensor[] }[]>(examples.iris.samplesPath);
  const encoderSamples = await readJson<{ inputs: V2Tensor[] }[]>(examples.encoder.samplesPath);
  const ofLength = (n: number) =>
    encoderSamples.find((s) => s.inputs[0]?.shape[1] === n)?.inputs ?? [];
  const cases: Case[] = [
    {
      name: 'iris exact',
      reps: QUICK ? 50 : 300,
      model: 'iris',
      inputs: irisSamples[2]?.inputs ?? [],
      parameters: {},
    },
    {
      name: 'encoder seq 8, window 2',
      reps: REPS,
      model: 'encoder',
      inputs: ofLength(8),
      parameters: { method: 'kernel-shap', window: [2], output: 'sentence_embedding' },
    },
    {
      name: 'encoder seq 32, window 4',
      reps: REPS,
      model: 'encoder',
      inputs: ofLength(32),
      parameters: { method: 'kernel-shap', window: [4], output: 'sentence_embedding' },
    },
  ];

  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const c of cases) {
    const session = provider.session(c.model);
    const body = new TextEncoder().encode(
      JSON.stringify({ inputs: c.inputs, parameters: c.parameters }),
    );
    const explainOnce = async (): Promise<{ ms: number; answer: Explained }> => {
      const started = performance.now();
      const res = await app({
        method: 'POST',
        path: `/v2/models/${c.model}/explain`,
        headers: { 'content-type': 'application/json' },
        query: {},
        body,
        requestId: 'bench',
      });
      const ms = performance.now() - started;
      if (res.status !== 200) throw new Error(`${c.name}: ${res.status} ${String(res.body)}`);
      return { ms, answer: JSON.parse(String(res.body)) as Explained };
    };
    const warm = await explainOnce();
    const elements = c.inputs.reduce((s, t) => s + t.data.length, 0);
    const plan = batchPlan(warm.answer.evaluations, elements);
    const feeds = [...new Set(plan)].map((b) => [b, batched(c.inputs, b)] as const);
    const feedsOf = new Map(feeds);
    const rawOnce = async (): Promise<number> => {
      const started = performance.now();
      for (const b of plan) await session.run(feedsOf.get(b) ?? {}, [warm.answer.output]);
      return performance.now() - started;
    };
    // the same prediction as an infer request, then the evaluations as raw runs: what any served
    // request costs, so the difference is what explaining itself adds
    const inferBody = new TextEncoder().encode(
      JSON.stringify({ inputs: c.inputs, outputs: [{ name: warm.answer.output }] }),
    );
    const inferThenRawOnce = async (): Promise<number> => {
      const started = performance.now();
      const res = await app({
        method: 'POST',
        path: `/v2/models/${c.model}/infer`,
        headers: { 'content-type': 'application/json' },
        query: {},
        body: inferBody,
        requestId: 'bench',
      });
      if (res.status !== 200) throw new Error(`${c.name} infer: ${res.status}`);
      for (const b of plan.slice(1)) await session.run(feedsOf.get(b) ?? {}, [warm.answer.output]);
      return performance.now() - started;
    };
    await rawOnce();
    await inferThenRawOnce();
    const explainMs: number[] = [];
    const rawMs: number[] = [];
    const inferMs: number[] = [];
    for (let i = 0; i < c.reps; i++) {
      explainMs.push((await explainOnce()).ms);
      rawMs.push(await rawOnce());
      inferMs.push(await inferThenRawOnce());
    }
    const e = median(explainMs);
    const r = median(rawMs);
    const ir = median(inferMs);
    const ratio = e / r;
    rows.push([
      c.name,
      `${warm.answer.method} ${warm.answer.mode} (${warm.answer.players})`,
      warm.answer.evaluations,
      plan.length,
      e,
      r,
      ratio,
      ratio <= GOAL ? 'ok' : 'over',
      ir,
      e / ir,
    ]);
    results.push({
      case: c.name,
      method: warm.answer.method,
      mode: warm.answer.mode,
      players: warm.answer.players,
      evaluations: warm.answer.evaluations,
      runs: plan.length,
      reps: c.reps,
      batches: plan,
      explainMsMedian: e,
      rawMsMedian: r,
      ratio,
      inferThenRawMsMedian: ir,
      ratioToInferThenRaw: e / ir,
      explainMs,
      rawMs,
      inferMs,
    });
  }
  printTable(
    `explanation vs the same session.run evaluations, batched the same way (median of ${REPS} runs, Iris ${cases[0]?.reps}; goal ≤ ${GOAL}×)`,
    [
      'case',
      'method',
      'evals',
      'runs',
      'explain ms',
      'raw runs ms',
      'ratio',
      'goal',
      'infer + raw ms',
      'ratio',
    ],
    rows,
  );
  await writeResults('explain', {
    reps: REPS,
    goal: GOAL,
    budget: EXPLAIN_DEFAULTS,
    cases: results,
  });
  await provider.release();
};

await main();
