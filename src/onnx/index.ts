export {
  type AttributeProto,
  AttributeProto_AttributeType,
  type FunctionProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type SparseTensorProto,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  type ValueInfoProto,
} from 'onnx-buf';
export {
  type AttrValue,
  type AttrWrapped,
  attribute,
  encodeModel,
  type GraphSpec,
  graph,
  type ModelSpec,
  model,
  type NodeOptions,
  node,
  parseModel,
  type TensorValues,
  tensor,
  valueInfo,
} from './builder.ts';
export {
  datatypeToElemType,
  elemTypeByteSize,
  elemTypeName,
  elemTypeToDatatype,
} from './datatypes.ts';
export {
  InvalidModelError,
  ModelRejectedError,
  REJECTION_CODES,
  type RejectionCode,
} from './errors.ts';
export {
  opKey,
  readSignature,
  tensorElementCount,
  tensorSpec,
  tensorToFloat32,
} from './signature.ts';
export type {
  Datatype,
  ModelSignature,
  NumericData,
  OpsetImport,
  TensorData,
  TensorSpec,
  TensorValue,
} from './types.ts';
export { DATATYPES } from './types.ts';
export {
  ALLOWED_DOMAINS,
  ALLOWED_MICROSOFT_OPS,
  DEFAULT_VALIDATION_LIMITS,
  type ValidationLimits,
  validateModel,
} from './validate.ts';
