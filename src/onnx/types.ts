/** Open Inference Protocol V2 tensor datatypes. */
export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

/**
 * Tensor element storage per V2 datatype: BOOL as one byte per element (0 or 1), FP16 as its raw
 * IEEE half bits (JS has no half-precision number), 64-bit integers as bigint arrays, BYTES as
 * strings (onnxruntime-node string tensors hold text).
 */
export type NumericData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array;
export type TensorData = NumericData | string[];

/** A named tensor in JS memory: what the codec decodes and the runtime feeds to a session. */
export interface TensorValue {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** V2 shape: -1 for a dynamic dim */
  shape: number[];
  /** the symbolic names of dynamic dims where the model gives one (`batch`), `null` otherwise */
  dimNames?: (string | null)[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface ModelSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opsetImports: OpsetImport[];
  irVersion: number;
  producer: { name: string; version: string };
  /** `domain::OpType` (domain omitted for ai.onnx) → count, subgraphs included */
  opHistogram: Record<string, number>;
  nodeCount: number;
  /** elements across initializers and Constant-node tensors */
  parameterCount: number;
}
