/** The methods a request may ask for; `auto` picks one of the other two. */
export type ExplainMethod = 'kernel-shap' | 'occlusion' | 'auto';

/** One input of the example explained, as plain numbers. */
export interface ExplainInput {
  name: string;
  /** dims of the example (without a batch dimension the evaluator adds) */
  shape: readonly number[];
  x: Float64Array;
  baseline: Float64Array;
}

/**
 * The model seen as a scalar function: each item of the batch holds one array per input (in the
 * order of `ExplainInput`s), and the answer is the explained output element for each item. When
 * `explain` is given no f(x), the first item of the first batch is x itself (the very arrays of
 * the `ExplainInput`s): its caller can read the prediction there and choose the output element.
 */
export type Evaluate = (batch: Float64Array[][]) => Promise<ArrayLike<number>>;

export interface ExplainOptions {
  method: ExplainMethod;
  /** model evaluations allowed, the prediction run included */
  budget: number;
  /** per input, a window over its dims (trailing dims when shorter); none: per element or auto groups */
  windows?: readonly (readonly number[] | undefined)[];
  /** occlusion stride per input; default: the window (tiles that do not overlap) */
  strides?: readonly (readonly number[] | undefined)[];
  seed: number;
  /** items per call to `evaluate` (1 for a model without a dynamic batch dimension) */
  batchSize: number;
  /**
   * items in the first call (default `batchSize`); 1 makes the prediction run alone first when
   * f(x) is evaluated, so its caller learns what one run costs before it commits to the batches
   */
  firstBatch?: number;
  /**
   * items in the next call, given how many calls came before and how many items are left: lets
   * the caller grow its batches as it learns what they cost (clamped to 1..batchSize); overrides
   * `firstBatch`
   */
  nextBatch?: (calls: number, left: number) => number;
  /**
   * Told, before any evaluation, how many the chosen plan spends at most (the prediction
   * included); it may throw to refuse a plan that cannot finish in time.
   */
  onPlan?: (evaluations: number, method: 'kernel-shap' | 'occlusion') => void;
}

export interface Explanation {
  method: 'kernel-shap' | 'occlusion';
  /** how the method ran: every coalition, sampled coalitions, or sliding windows */
  mode: 'exact' | 'sampled' | 'windows';
  /** players of KernelSHAP (features or groups) or occlusion windows */
  players: number;
  /** whether players are single elements or groups of them */
  grouping: 'elements' | 'windows' | 'auto-groups';
  /** f(x): the value given, or the one evaluated as the first item */
  prediction: number;
  /** f(baseline) */
  baseValue: number;
  /** per input, shaped like it */
  attributions: Float64Array[];
  /** calls of the model on one example, the prediction run included */
  evaluations: number;
  /** items of each call to `evaluate`, in order: the batch plan the explanation ran */
  batches: number[];
}
