import { create, toBinary } from '@bufbuild/protobuf';
import { GraphProtoSchema, ModelProtoSchema } from 'onnx-buf';
import { encodeModel, type ModelProto } from '../onnx/index.ts';
import type { QuantizationReport } from './report.ts';

/**
 * The model's encoding in pieces whose concatenation decodes to the same model: everything but
 * the main graph's initializers, then one ModelProto per initializer holding only it. Protobuf
 * merges a message field that occurs twice and appends to its repeated fields, so a writer holds
 * one tensor's encoding at a time, where encoding the whole model in one go grows one buffer by
 * doubling and copies it at the end (up to three times the model's size at once).
 */
export function* modelPieces(model: ModelProto): Generator<Uint8Array> {
  const g = model.graph;
  if (g === undefined) {
    yield encodeModel(model);
    return;
  }
  const initializers = g.initializer;
  let head: Uint8Array;
  g.initializer = [];
  try {
    head = encodeModel(model);
  } finally {
    g.initializer = initializers;
  }
  yield head;
  for (const t of initializers) {
    yield toBinary(
      ModelProtoSchema,
      create(ModelProtoSchema, { graph: create(GraphProtoSchema, { initializer: [t] }) }),
    );
  }
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
