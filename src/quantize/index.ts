export { InvalidGateInputError } from './errors.ts';
export {
  DEFAULT_MIN_COSINE,
  evaluateVariants,
  type GateInput,
  type GateObjective,
  type GateOptions,
  type GateResult,
} from './gate.ts';
export {
  DEFAULT_MIN_ELEMENTS,
  type QuantizeOptions,
  type QuantizeResult,
  quantizeModel,
  SCHEME_DYNAMIC_QUANTIZE_MATMUL,
  SCHEME_MATMUL_INTEGER,
} from './quantize.ts';
