import { Tensor } from 'onnxruntime-node';
import { MaasError } from '../errors/index.ts';
import type { Datatype, TensorData, TensorValue } from '../onnx/index.ts';

type OrtType = Tensor.Type;

/** onnxruntime's tensor type for each Open Inference Protocol datatype */
export const ORT_TYPES: Readonly<Record<Datatype, OrtType>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const DATATYPES_BY_ORT: ReadonlyMap<string, Datatype> = new Map(
  Object.entries(ORT_TYPES).map(([datatype, ort]) => [ort, datatype as Datatype]),
);

/** the protocol datatype of an onnxruntime tensor type, `undefined` for one it cannot carry */
export const datatypeOfOrt = (type: string): Datatype | undefined => DATATYPES_BY_ORT.get(type);

export const toOrtTensor = (tensor: TensorValue): Tensor =>
  new Tensor(ORT_TYPES[tensor.datatype], tensor.data, tensor.shape);

/**
 * An output tensor in the codec's form. FP16 arrives as `Float16Array` where the runtime has one;
 * the wire codec keeps the raw half bits either way.
 */
export const fromOrtTensor = (name: string, tensor: Tensor): TensorValue => {
  const datatype = DATATYPES_BY_ORT.get(tensor.type);
  if (datatype === undefined) {
    throw new MaasError(
      'UnsupportedOutputType',
      `output ${name} has type ${tensor.type}, which the protocol cannot return`,
    );
  }
  const raw = tensor.data as unknown as TensorData | ArrayBufferView;
  const data =
    datatype === 'FP16' && !(raw instanceof Uint16Array) && ArrayBuffer.isView(raw)
      ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)
      : (raw as TensorData);
  return { name, datatype, shape: [...tensor.dims], data };
};
