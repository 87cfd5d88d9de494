import { create, toBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema, TensorProtoSchema } from 'onnx-buf';
import { encodeModel, type ModelProto, type TensorProto } from '../onnx/index.ts';
import type { QuantizationReport } from './report.ts';

/**
 * The model's encoding in pieces whose concatenation decodes to the same model: everything but
 * the main graph's initializers, then one ModelProto per initializer holding only it. Protobuf
 * merges a message field that occurs twice and appends to its repeated fields, so a writer holds
 * one tensor's encoding at a time, where encoding the whole model in one go grows one buffer by
 * doubling and copies it at the end (up to three times the model's size at once). A tensor's raw
 * data is handed out as it is, after the bytes that frame it, never copied.
 */
export function* modelPieces(model: ModelProto): Generator<Uint8Array> {
  yield modelHead(model);
  for (const t of model.graph?.initializer ?? []) yield* initializerPieces(t);
}

/** The model's encoding without its main graph's initializers: the first of `modelPieces`. */
export const modelHead = (model: ModelProto): Uint8Array => {
  const g = model.graph;
  if (g === undefined) return encodeModel(model);
  const initializers = g.initializer;
  g.initializer = [];
  try {
    return encodeModel(model);
  } finally {
    g.initializer = initializers;
  }
};

const LEN = 2;
const tag = (field: number) => field * 8 + LEN;
const GRAPH = tag(ModelProtoSchema.field.graph!.number);
const INITIALIZER = tag(GraphProtoSchema.field.initializer!.number);
const RAW_DATA = tag(TensorProtoSchema.field.rawData!.number);

const varint = (value: number): number[] => {
  const out: number[] = [];
  let n = value;
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
};

/**
 * `ModelProto { graph { initializer: [t] } }`: the tensor's other fields encoded, its raw data
 * framed as the last field and passed through (protobuf reads fields in any order).
 */
export function* initializerPieces(t: TensorProto): Generator<Uint8Array> {
  const raw = t.rawData;
  if (raw.byteLength === 0) {
    yield toBinary(
      ModelProtoSchema,
      create(ModelProtoSchema, { graph: create(GraphProtoSchema, { initializer: [t] }) }),
    );
    return;
  }
  let rest: Uint8Array;
  t.rawData = new Uint8Array(0);
  try {
    rest = toBinary(TensorProtoSchema, t);
  } finally {
    t.rawData = raw;
  }
  const rawHead = [RAW_DATA, ...varint(raw.byteLength)];
  const tensorLength = rest.byteLength + rawHead.length + raw.byteLength;
  const tensorHead = [INITIALIZER, ...varint(tensorLength)];
  const graphHead = [GRAPH, ...varint(tensorHead.length + tensorLength)];
  const frame = new Uint8Array(
    graphHead.length + tensorHead.length + rest.byteLength + rawHead.length,
  );
  frame.set(graphHead, 0);
  frame.set(tensorHead, graphHead.length);
  frame.set(rest, graphHead.length + tensorHead.length);
  frame.set(rawHead, graphHead.length + tensorHead.length + rest.byteLength);
  yield frame;
  yield raw;
}

const concat = (pieces: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

/**
 * A quantizer's result whose bytes are encoded only when asked for: a caller that writes `model`
 * out piece by piece (`modelPieces`) never holds the whole variant. `report` gets the size of the
 * encoding, which `bytes` and the pieces share.
 */
export const encodedResult = (
  model: ModelProto,
  report: (bytes: number) => QuantizationReport,
): { readonly bytes: Uint8Array; model: ModelProto; report: QuantizationReport } => {
  let size = 0;
  for (const piece of modelPieces(model)) size += piece.byteLength;
  let bytes: Uint8Array | undefined;
  return {
    model,
    report: report(size),
    get bytes() {
      bytes ??= concat([...modelPieces(model)]);
      return bytes;
    },
  };
};
