export {
  ExplainDisabledError,
  ExplainParameterError,
  ExplanationTooCostlyError,
} from './errors.ts';
export { explain, plan } from './explain.ts';
export { autoPlayers, elementPlayers, resolveWindow, windowPlayers } from './players.ts';
export {
  type BaselineChoice,
  type ExplainParameters,
  parseExplainParameters,
  type WindowChoice,
} from './request.ts';
export { EXPLAIN_DEFAULTS, type ExplainSettings, explainSettingsFromEnv } from './settings.ts';
export { exactShapley, kernelCoalitions, kernelRegression } from './shapley.ts';
export type {
  Evaluate,
  ExplainInput,
  ExplainMethod,
  ExplainOptions,
  Explanation,
} from './types.ts';
