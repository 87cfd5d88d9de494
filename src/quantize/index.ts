export { encodedResult, initializerPieces, modelHead, modelPieces } from './encode.ts';
export { InvalidGateInputError } from './errors.ts';
export {
  Agreement,
  DEFAULT_MIN_COSINE,
  DEFAULT_MIN_TOP1,
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
  mixedScheme,
  type QuantizeOptions,
  type QuantizeResult,
  quantizeModel,
  SCHEME_DYNAMIC_QUANTIZE_MATMUL,
  SCHEME_MATMUL_INTEGER,
} from './quantize.ts';
export type { QuantizationReport, QuantizedNodeReport } from './report.ts';
export {
  type ActivationRange,
  type CalibrationMethod,
  noiseMargins,
  planStatic,
  quantizeStatic,
  rangesWithMargin,
  SCHEME_STATIC_QDQ,
  type StaticOptions,
  type StaticPlan,
} from './static.ts';
