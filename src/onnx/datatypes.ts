import { TensorProto_DataType } from 'onnx-buf';
import type { Datatype } from './types.ts';

const D = TensorProto_DataType;

/** ONNX element types the runtime serves, with their Open Inference Protocol V2 names. */
const TABLE: readonly (readonly [TensorProto_DataType, Datatype])[] = [
  [D.BOOL, 'BOOL'],
  [D.UINT8, 'UINT8'],
  [D.UINT16, 'UINT16'],
  [D.UINT32, 'UINT32'],
  [D.UINT64, 'UINT64'],
  [D.INT8, 'INT8'],
  [D.INT16, 'INT16'],
  [D.INT32, 'INT32'],
  [D.INT64, 'INT64'],
  [D.FLOAT16, 'FP16'],
  [D.FLOAT, 'FP32'],
  [D.DOUBLE, 'FP64'],
  [D.STRING, 'BYTES'],
];

const toDatatype = new Map<number, Datatype>(TABLE);
const toElemType = new Map<Datatype, TensorProto_DataType>(TABLE.map(([e, d]) => [d, e]));

/** V2 datatype of an ONNX element type, `undefined` for types the runtime cannot serve. */
export const elemTypeToDatatype = (elemType: number): Datatype | undefined =>
  toDatatype.get(elemType);

export const datatypeToElemType = (datatype: Datatype): TensorProto_DataType => {
  const e = toElemType.get(datatype);
  if (e === undefined) throw new RangeError(`unknown V2 datatype ${datatype}`);
  return e;
};

/** ONNX's own name of an element type (`BFLOAT16`), for messages. */
export const elemTypeName = (elemType: number): string => D[elemType] ?? `type ${elemType}`;

/** Bytes per element in raw_data; `undefined` for STRING, sub-byte and unknown types. */
export const elemTypeByteSize = (elemType: number): number | undefined => {
  switch (elemType) {
    case D.BOOL:
    case D.UINT8:
    case D.INT8:
    case D.FLOAT8E4M3FN:
    case D.FLOAT8E4M3FNUZ:
    case D.FLOAT8E5M2:
    case D.FLOAT8E5M2FNUZ:
    case D.FLOAT8E8M0:
      return 1;
    case D.UINT16:
    case D.INT16:
    case D.FLOAT16:
    case D.BFLOAT16:
      return 2;
    case D.UINT32:
    case D.INT32:
    case D.FLOAT:
      return 4;
    case D.UINT64:
    case D.INT64:
    case D.DOUBLE:
    case D.COMPLEX64:
      return 8;
    case D.COMPLEX128:
      return 16;
    default:
      return undefined;
  }
};
