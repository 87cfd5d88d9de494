/**
 * Explain benchmark: what an explanation costs beyond the model runs it needs. For Iris (exact
 * KernelSHAP) and the encoder (grouped KernelSHAP at the default budget, two sequence lengths),
 * the time of `POST /v2/models/{m}/explain` through the predict app (codec, planning, coalitions,
 * composing perturbed inputs, regression, response) against the time of the same raw
 * `session.run` calls on the same session: the batch sizes are the ones the explanation reports
 * it ran (`timing.batches`), so nothing is guessed. Everything is interleaved so a busy machine
 * slows all alike. Goal: ≤ 1.3×. The serving floor (an ordinary infer request of the example less
 * its raw run) is measured too, so a model that runs in microseconds shows what explaining adds
 * beyond what serving any request costs.
 *
 *   npx tsx bench/explain.ts [--quick] [--only=iris] [--block=20]
 */
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { ensureExampleModels } from '../models/generate.ts';
import { EXPLAIN_DEFAULTS } from '../src/explain/index.ts';
import { createPredictApp } from '../src/serve/index.ts';
import { SessionProvider } from '../test/support/conformance-models.ts';
import { readJson, toOrtFeeds, type V2Tensor } from '../test/support/models.ts';
import { printTable, writeResults } from './lib/report.ts';

const QUICK = process.argv.includes('--quick');
const BLOCK_ARG = process.argv.find((a) => a.startsWith('--block='))?.slice('--block='.length);
/** `--block=N`: Iris's calls per sample (default 20) */
const BLOCK = BLOCK_ARG === undefined ? undefined : Math.max(1, Number(BLOCK_ARG));
/** `--only=iris`: the cases whose name starts so */
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const REPS = QUICK ? 3 : 7;
const GOAL = 1.3;

interface Case {
  name: string;
  /** repetitions: many for a model that runs in microseconds, so the median is steady */
  reps: number;
  /**
   * unrecorded rounds first: code that runs for microseconds is only compiled to its steady
   * state after a few hundred calls, as on an instance that has served for a while
   */
  warmup: number;
  /**
   * calls per sample, back to back (each sample is their mean): one for the encoder; a block for
   * Iris, whose calls take microseconds, so a sample is an instance's steady state serving such
   * calls rather than the cache misses of switching among four workloads at every call (the
   * first sample of each block pays them: `--block=1` shows that cost alone)
   */
  block: number;
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
  timing: { total_ms: number; evaluation_ms: number; batches: number[] };
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
      warmup: QUICK ? 200 : 500,
      block: BLOCK ?? 20,
      model: 'iris',
      inputs: irisSamples[2]?.inputs ?? [],
      parameters: {},
    },
    {
      name: 'encoder seq 8, window 2',
      reps: REPS,
      warmup: 0,
      block: 1,
      model: 'encoder',
      inputs: ofLength(8),
      parameters: { method: 'kernel-shap', window: [2], output: 'sentence_embedding' },
    },
    {
      name: 'encoder seq 32, window 4',
      reps: REPS,
      warmup: 0,
      block: 1,
      model: 'encoder',
      inputs: ofLength(32),
      parameters: { method: 'kernel-shap', window: [4], output: 'sentence_embedding' },
    },
  ];

  const rows: (string | number)[][] = [];
  const results: Record<string, unknown>[] = [];
  for (const c of cases.filter((k) => ONLY === undefined || k.name.startsWith(ONLY))) {
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
    // the first explanation of a session runs its prediction alone and learns what a batched
    // evaluation costs; the ones after it run the plan measured here
    await explainOnce();
    const warm = await explainOnce();
    const plan = warm.answer.timing.batches;
    const feeds = [...new Set([1, ...plan])].map((b) => [b, batched(c.inputs, b)] as const);
    const feedsOf = new Map(feeds);
    const rawOnce = async (): Promise<number> => {
      const started = performance.now();
      for (const b of plan) await session.run(feedsOf.get(b) ?? {}, [warm.answer.output]);
      return performance.now() - started;
    };
    // what any served request costs beyond its run: an infer request of the example, and its raw run
    const inferBody = new TextEncoder().encode(
      JSON.stringify({ inputs: c.inputs, outputs: [{ name: warm.answer.output }] }),
    );
    const inferOnce = async (): Promise<number> => {
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
      return performance.now() - started;
    };
    const rawOneOnce = async (): Promise<number> => {
      const started = performance.now();
      await session.run(feedsOf.get(1) ?? {}, [warm.answer.output]);
      return performance.now() - started;
    };
    await rawOnce();
    await inferOnce();
    await rawOneOnce();
    const explainMs: number[] = [];
    const rawMs: number[] = [];
    const inferMs: number[] = [];
    const rawOneMs: number[] = [];
    let otherPlans = 0;
    for (let i = 0; i < c.warmup; i++) {
      await explainOnce();
      await rawOnce();
      await inferOnce();
      await rawOneOnce();
    }
    const sample = async (once: () => Promise<number>): Promise<number> => {
      let ms = 0;
      for (let k = 0; k < c.block; k++) ms += await once();
      return ms / c.block;
    };
    for (let i = 0; i < c.reps; i++) {
      explainMs.push(
        await sample(async () => {
          const explained = await explainOnce();
          if (explained.answer.timing.batches.join() !== plan.join()) otherPlans++;
          return explained.ms;
        }),
      );
      rawMs.push(await sample(rawOnce));
      inferMs.push(await sample(inferOnce));
      rawOneMs.push(await sample(rawOneOnce));
    }
    if (otherPlans > 0) {
      throw new Error(
        `${c.name}: ${otherPlans} explanations ran another batch plan than [${plan}]`,
      );
    }
    const e = median(explainMs);
    const r = median(rawMs);
    const floor = Math.max(0, median(inferMs) - median(rawOneMs));
    const ratio = e / r;
    rows.push([
      c.name,
      `${warm.answer.method} ${warm.answer.mode} (${warm.answer.players})`,
      warm.answer.evaluations,
      plan.join('+'),
      e,
      r,
      ratio,
      ratio <= GOAL ? 'ok' : 'over',
      (e - r) * 1000,
      floor * 1000,
      e / (r + floor),
    ]);
    results.push({
      case: c.name,
      method: warm.answer.method,
      mode: warm.answer.mode,
      players: warm.answer.players,
      evaluations: warm.answer.evaluations,
      runs: plan.length,
      reps: c.reps,
      warmup: c.warmup,
      block: c.block,
      batches: plan,
      explainMsMedian: e,
      rawMsMedian: r,
      ratio,
      addedUs: (e - r) * 1000,
      inferMsMedian: median(inferMs),
      rawOneMsMedian: median(rawOneMs),
      servingFloorUs: floor * 1000,
      ratioToRawPlusFloor: e / (r + floor),
      explainMs,
      rawMs,
      inferMs,
      rawOneMs,
    });
  }
  printTable(
    `explanation vs the same session.run calls, in the batches it reports (median of ${REPS} runs, Iris ${cases[0]?.reps} of ${cases[0]?.block} calls each; goal ≤ ${GOAL}×)`,
    [
      'case',
      'method',
      'evals',
      'batches',
      'explain ms',
      'raw runs ms',
      'ratio',
      'goal',
      'added µs',
      'floor µs',
      'ratio to raw + floor',
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
