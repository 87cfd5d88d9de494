import { ConfigError, type Env, envNumber, envText } from '../config/index.ts';

/** What the predict function reads for explanations, once, at cold start. */
export interface ExplainSettings {
  /** `MAAS_EXPLAIN` (`on` | `off`): the deployment-wide switch */
  enabled: boolean;
  /** `MAAS_EXPLAIN_BUDGET`: model evaluations when a request names no budget */
  defaultBudget: number;
  /** `MAAS_EXPLAIN_MAX_BUDGET`: the most a request may ask for */
  maxBudget: number;
  /** `MAAS_EXPLAIN_MAX_MS`: wall time of one explanation, within the invocation's remaining time */
  maxMs: number;
  /** `MAAS_EXPLAIN_MARGIN_MS`: time kept free before the invocation's deadline to answer */
  marginMs: number;
  /** `MAAS_EXPLAIN_MAX_BATCH`: examples per model run when the model has a dynamic batch dim */
  maxBatch: number;
}

/**
 * 128 evaluations enumerate every coalition of up to 7 features (Iris takes 16) and give a
 * MiniLM-sized encoder three batched runs (bench/explain.ts measures what they cost); the cap
 * leaves room for finer groups when the caller accepts the wait, always within the invocation's
 * remaining time.
 */
export const EXPLAIN_DEFAULTS: Readonly<ExplainSettings> = {
  enabled: true,
  defaultBudget: 128,
  maxBudget: 2048,
  maxMs: 10_000,
  marginMs: 1_000,
  maxBatch: 64,
};

const integer = (env: Env, name: string, fallback: number, min: number, max?: number): number =>
  envNumber(env, name, fallback, { min, integer: true, ...(max === undefined ? {} : { max }) });

export const explainSettingsFromEnv = (env: Env = process.env): ExplainSettings => {
  const switchValue = envText(env, 'MAAS_EXPLAIN')?.toLowerCase();
  if (switchValue !== undefined && switchValue !== 'on' && switchValue !== 'off') {
    throw new ConfigError('MAAS_EXPLAIN', switchValue, 'on or off');
  }
  const maxBudget = integer(env, 'MAAS_EXPLAIN_MAX_BUDGET', EXPLAIN_DEFAULTS.maxBudget, 2, 1 << 20);
  return {
    enabled: switchValue !== 'off',
    maxBudget,
    defaultBudget: integer(
      env,
      'MAAS_EXPLAIN_BUDGET',
      Math.min(EXPLAIN_DEFAULTS.defaultBudget, maxBudget),
      2,
      maxBudget,
    ),
    maxMs: integer(env, 'MAAS_EXPLAIN_MAX_MS', EXPLAIN_DEFAULTS.maxMs, 1),
    marginMs: integer(env, 'MAAS_EXPLAIN_MARGIN_MS', EXPLAIN_DEFAULTS.marginMs, 0),
    maxBatch: integer(env, 'MAAS_EXPLAIN_MAX_BATCH', EXPLAIN_DEFAULTS.maxBatch, 1, 4096),
  };
};
