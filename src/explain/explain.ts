import { mulberry32 } from '../util/index.ts';
import { ExplainParameterError, ExplanationTooCostlyError } from './errors.ts';
import {
  autoPlayers,
  compose,
  elementPlayers,
  type Players,
  resolveWindow,
  slidingWindows,
  spread,
  windowPlayers,
} from './players.ts';
import {
  exactCoalitions,
  exactCost,
  exactShapley,
  kernelCoalitions,
  kernelRegression,
  minSampledCoalitions,
} from './shapley.ts';
import type { Evaluate, ExplainInput, ExplainOptions, Explanation } from './types.ts';

/** Coalitions per player `auto` gives a sampled KernelSHAP over groups it chose itself. */
const AUTO_COALITIONS_PER_PLAYER = 4;
/**
 * The most players a sampled KernelSHAP takes: its regression costs about coalitions × players²
 * (1,000 players at the top budget took 1.6 s of solver time outside any model run, found by
 * attack), while 256 keep it near 0.1 s.
 */
export const MAX_SAMPLED_PLAYERS = 256;

type Plan =
  | {
      method: 'kernel-shap';
      mode: 'exact' | 'sampled';
      players: Players;
      grouping: Explanation['grouping'];
    }
  | { method: 'occlusion'; windows: { input: number; indices: Int32Array }[] };

/**
 * Runs items through `evaluate` in batches (the first of `firstBatch` items, the others of
 * `batchSize`), composing each batch only when it is due. With `x` given, x is evaluated too, as
 * the very first item, and its value comes back as `fx`. Each batch's size is pushed on `batches`.
 */
const inBatches = async <T>(
  items: readonly T[],
  build: (item: T) => Float64Array[],
  x: Float64Array[] | undefined,
  evaluate: Evaluate,
  options: Pick<ExplainOptions, 'batchSize' | 'firstBatch' | 'nextBatch'>,
  batches: number[],
): Promise<{ fx: number; outputs: Float64Array }> => {
  const lead = x === undefined ? 0 : 1;
  const total = items.length + lead;
  const outputs = new Float64Array(items.length);
  let fx = Number.NaN;
  for (let at = 0; at < total; ) {
    const left = total - at;
    const wanted =
      options.nextBatch !== undefined
        ? Math.min(
            options.batchSize,
            Math.max(1, Math.floor(options.nextBatch(batches.length, left))),
          )
        : batches.length === 0
          ? (options.firstBatch ?? options.batchSize)
          : options.batchSize;
    const size = Math.min(Number.isFinite(wanted) ? wanted : 1, left);
    const batch = new Array<Float64Array[]>(size);
    for (let b = 0; b < size; b++) {
      const i = at + b - lead;
      batch[b] = i < 0 ? (x ?? []) : build(items[i] as T);
    }
    const values = await evaluate(batch);
    for (let b = 0; b < size; b++) {
      const i = at + b - lead;
      const value = values[b] ?? Number.NaN;
      if (i < 0) fx = value;
      else outputs[i] = value;
    }
    batches.push(size);
    at += size;
  }
  return { fx, outputs };
};

const occlusionWindows = (
  inputs: readonly ExplainInput[],
  options: ExplainOptions,
): { input: number; indices: Int32Array }[] =>
  inputs.flatMap((input, k) => {
    const given = options.windows?.[k];
    const window = given ? resolveWindow(input.name, input.shape, given) : input.shape.map(() => 1);
    const strideGiven = options.strides?.[k];
    const stride = strideGiven
      ? resolveWindow(input.name, input.shape, strideGiven, 'stride')
      : window;
    if (stride.some((step, d) => step > (window[d] ?? 1))) {
      // windows that skip elements would leave them at 0 as if they did not matter
      throw new ExplainParameterError(
        `parameters.stride [${stride.join(', ')}] of input ${JSON.stringify(input.name)} is larger than ` +
          `its window [${window.join(', ')}]: the elements between windows would get no attribution; ` +
          'send a stride no larger than the window in every dim (the default is the window)',
      );
    }
    return slidingWindows(input.shape, window, stride).map((indices) => ({ input: k, indices }));
  });

const describeWindows = (options: ExplainOptions): string =>
  options.windows?.some((w) => w !== undefined) ? 'a larger window' : 'a window (e.g. [8, 8])';

/**
 * Chooses how to explain within the budget (model runs, the prediction included): exact
 * KernelSHAP when every coalition fits, sampled KernelSHAP when enough coalitions do, occlusion
 * when only the windows do. A request that fits none is refused with the budget or window that
 * would fit.
 */
export const plan = (inputs: readonly ExplainInput[], options: ExplainOptions): Plan => {
  const left = options.budget - 1;
  const windowed = options.windows?.some((w) => w !== undefined) ?? false;
  const kernelFor = (players: Players, grouping: Explanation['grouping']): Plan | undefined => {
    if (players.count <= 30 && exactCost(players.count) <= left) {
      return { method: 'kernel-shap', mode: 'exact', players, grouping };
    }
    if (players.count <= MAX_SAMPLED_PLAYERS && 1 + minSampledCoalitions(players.count) <= left) {
      return { method: 'kernel-shap', mode: 'sampled', players, grouping };
    }
    return undefined;
  };
  const features = inputs.reduce((sum, input) => sum + input.x.length, 0);
  const autoGroups = (): Plan => {
    const target = Math.min(
      features,
      MAX_SAMPLED_PLAYERS,
      Math.floor((left - 1) / AUTO_COALITIONS_PER_PLAYER),
    );
    const chosen = target >= 2 ? kernelFor(autoPlayers(inputs, target), 'auto-groups') : undefined;
    if (chosen) return chosen;
    throw new ExplanationTooCostlyError(
      `a budget of ${options.budget} evaluations is too small to explain ${features} input ` +
        // two groups, the fewest it explains, need (budget − 2) ÷ AUTO_COALITIONS_PER_PLAYER ≥ 2
        `elements; send a budget of at least ${2 + 2 * AUTO_COALITIONS_PER_PLAYER}`,
    );
  };

  if (options.method === 'occlusion') {
    const windows = occlusionWindows(inputs, options);
    if (1 + windows.length > left) {
      throw new ExplanationTooCostlyError(
        `occlusion needs ${windows.length + 2} evaluations (${windows.length} window placements, ` +
          `the prediction and the baseline) but the budget is ${options.budget}; send a budget of ` +
          `at least ${windows.length + 2}, or ${describeWindows(options)} or a larger stride`,
      );
    }
    return { method: 'occlusion', windows };
  }
  const players = windowed ? windowPlayers(inputs, options.windows ?? []) : elementPlayers(inputs);
  const grouping = windowed ? 'windows' : 'elements';
  const kernel = kernelFor(players, grouping);
  if (kernel) return kernel;
  const needed = 2 + minSampledCoalitions(players.count);
  if (options.method === 'kernel-shap') {
    if (windowed && players.count > MAX_SAMPLED_PLAYERS) {
      throw new ExplanationTooCostlyError(
        `KernelSHAP over ${players.count} windows is more than the ${MAX_SAMPLED_PLAYERS} players ` +
          'its regression takes in time; send a larger window, or method "occlusion"',
      );
    }
    if (windowed) {
      throw new ExplanationTooCostlyError(
        `KernelSHAP over ${players.count} windows needs at least ${needed} evaluations but the ` +
          `budget is ${options.budget}; send a budget of at least ${needed}, or a larger window`,
      );
    }
    return autoGroups();
  }
  if (windowed) {
    const windows = occlusionWindows(inputs, options);
    if (1 + windows.length <= left) return { method: 'occlusion', windows };
    throw new ExplanationTooCostlyError(
      `${players.count} windows need at least ${Math.min(needed, windows.length + 2)} evaluations ` +
        `but the budget is ${options.budget}; send a budget of at least ` +
        `${Math.min(needed, windows.length + 2)}, or a larger window`,
    );
  }
  return autoGroups();
};

/** The most evaluations a plan spends, the prediction run included. */
const plannedEvaluations = (chosen: Plan, budget: number): number => {
  if (chosen.method === 'occlusion') return chosen.windows.length + 2;
  return chosen.mode === 'exact' ? 2 ** chosen.players.count : budget;
};

/** Evaluates items in batches for one explanation (`inBatches` with its x, f and options bound). */
type Run = <T>(
  items: readonly T[],
  build: (item: T) => Float64Array[],
) => Promise<{ fx: number; outputs: Float64Array }>;

type OcclusionWindow = { input: number; indices: Int32Array };

/** Refuses a batch size or a first batch size that is not a positive integer. */
const checkBatchSizes = (options: ExplainOptions): void => {
  const first = options.firstBatch ?? options.batchSize;
  if (!Number.isSafeInteger(options.batchSize) || options.batchSize < 1) {
    throw new ExplainParameterError(
      `batch size must be a positive integer, got ${options.batchSize}`,
    );
  }
  if (!Number.isSafeInteger(first) || first < 1) {
    throw new ExplainParameterError(`first batch size must be a positive integer, got ${first}`);
  }
};

/** Each element's occlusion attribution: f's drop over the windows covering it, averaged. */
const occlusionAttributions = (
  inputs: readonly ExplainInput[],
  windows: readonly OcclusionWindow[],
  prediction: number,
  outputs: Float64Array,
): Float64Array[] => {
  const sums = inputs.map((input) => new Float64Array(input.x.length));
  const cover = inputs.map((input) => new Float64Array(input.x.length));
  windows.forEach((w, j) => {
    const share = (prediction - (outputs[j + 1] ?? 0)) / w.indices.length;
    const sum = sums[w.input];
    const count = cover[w.input];
    if (!sum || !count) return;
    for (const i of w.indices) {
      sum[i] = (sum[i] ?? 0) + share;
      count[i] = (count[i] ?? 0) + 1;
    }
  });
  sums.forEach((sum, k) => {
    const count = cover[k];
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] ?? 0) / Math.max(1, count?.[i] ?? 1);
  });
  return sums;
};

/** Occlusion: f at the baseline, then at x with each window in turn set to the baseline. */
const explainByOcclusion = async (
  inputs: readonly ExplainInput[],
  fx: number | undefined,
  windows: readonly OcclusionWindow[],
  run: Run,
): Promise<Omit<Explanation, 'batches'>> => {
  const baselineItem = inputs.map((input) => input.baseline);
  const ran = await run([undefined, ...windows], (w) => {
    if (w === undefined) return baselineItem;
    return inputs.map((input, k) => {
      if (k !== w.input) return input.x;
      const out = Float64Array.from(input.x);
      for (const i of w.indices) out[i] = input.baseline[i] ?? 0;
      return out;
    });
  });
  const prediction = fx ?? ran.fx;
  const outputs = ran.outputs;
  return {
    method: 'occlusion',
    mode: 'windows',
    players: windows.length,
    grouping: 'windows',
    prediction,
    baseValue: outputs[0] ?? 0,
    attributions: occlusionAttributions(inputs, windows, prediction, outputs),
    evaluations: 1 + outputs.length,
  };
};

/** KernelSHAP: f on every coalition (exact), or on sampled ones through the weighted regression. */
const explainByKernelShap = async (
  inputs: readonly ExplainInput[],
  fx: number | undefined,
  chosen: Extract<Plan, { method: 'kernel-shap' }>,
  options: ExplainOptions,
  run: Run,
): Promise<Omit<Explanation, 'batches'>> => {
  const { players, mode, grouping } = chosen;
  const build = (mask: Uint8Array) => compose(inputs, players, mask);
  let values: Float64Array;
  let prediction: number;
  let baseValue: number;
  let evaluations: number;
  if (mode === 'exact') {
    // every coalition but the full one, which is x
    const ran = await run(exactCoalitions(players.count), build);
    prediction = fx ?? ran.fx;
    const exact = exactShapley(players.count, ran.outputs, prediction);
    values = exact.values;
    baseValue = exact.empty;
    evaluations = 2 ** players.count;
  } else {
    const coalitions = kernelCoalitions(
      players.count,
      options.budget - 2,
      mulberry32(options.seed),
    );
    const ran = await run([new Uint8Array(players.count), ...coalitions.masks], build);
    prediction = fx ?? ran.fx;
    baseValue = ran.outputs[0] ?? 0;
    values = kernelRegression(
      players.count,
      coalitions,
      ran.outputs.subarray(1),
      baseValue,
      prediction,
    );
    evaluations = 1 + ran.outputs.length;
  }
  return {
    method: 'kernel-shap',
    mode,
    players: players.count,
    grouping,
    prediction,
    baseValue,
    attributions: spread(inputs, players, values),
    evaluations,
  };
};

/**
 * Explains f at x against the baseline: attributions shaped like the inputs, and f(baseline).
 * `fx` is f(x) when the caller knows it already; without it, x rides as the first item of the
 * first batch, so a model with a dynamic batch dimension answers the prediction and the
 * perturbed copies in the same run.
 */
export const explain = async (
  inputs: readonly ExplainInput[],
  fx: number | undefined,
  evaluate: Evaluate,
  options: ExplainOptions,
): Promise<Explanation> => {
  checkBatchSizes(options);
  const chosen = plan(inputs, options);
  options.onPlan?.(plannedEvaluations(chosen, options.budget), chosen.method);
  const x = fx === undefined ? inputs.map((input) => input.x) : undefined;
  const batches: number[] = [];
  const run: Run = (items, build) => inBatches(items, build, x, evaluate, options, batches);
  const explained =
    chosen.method === 'occlusion'
      ? await explainByOcclusion(inputs, fx, chosen.windows, run)
      : await explainByKernelShap(inputs, fx, chosen, options, run);
  return { ...explained, batches };
};
