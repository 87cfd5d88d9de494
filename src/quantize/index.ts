export { InvalidGateInputError } from './errors.ts';
export {
  Agreement,
  DEFAULT_MIN_COSINE,
  type GateObjective,
  type GateOptions,
  type GateResult,
  gateSettings,
  judgeVariants,
  median,
  type OutputTensor,
  type VariantMeasurement,
} from './gate.ts';
export {
  DEFAULT_MIN_ELEMENTS,
  type QuantizeOptions,
  type QuantizeResult,
  quantizeModel,
  SCHEME_DYNAMIC_QUANTIZE_MATMUL,
  SCHEME_MATMUL_INTEGER,
} from './quantize.ts';
export type { QuantizationReport, QuantizedNodeReport } from './report.ts';
