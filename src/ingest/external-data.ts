import { type FileHandle, open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { clearField } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import {
  type GraphProto,
  parseModel,
  type TensorProto,
  TensorProto_DataLocation,
} from '../onnx/index.ts';
import { initializerPieces, modelHead } from '../quantize/index.ts';
import { type ModelFile, readWhole } from './model-file.ts';

/** bytes `[offset, offset + length)` of an open file, or an error when the file is shorter */
const readRange = async (
  file: FileHandle,
  offset: number,
  length: number,
): Promise<Uint8Array<ArrayBuffer>> => {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; ) {
    const { bytesRead } = await file.read(bytes, at, length - at, offset + at);
    if (bytesRead === 0) throw new Error(`external data ends before byte ${offset + length}`);
    at += bytesRead;
  }
  return bytes;
};

/**
 * External data of the graph `graphPath`, as onnxruntime writes it: every tensor names the one
 * file `name` beside the graph, with an offset and a length. The file is opened at the first
 * tensor that needs it: onnxruntime writes none when every initializer is below its threshold
 * (1 KB).
 */
class ExternalData {
  private file: Promise<FileHandle> | undefined;

  constructor(
    private readonly graphPath: string,
    private readonly name: string,
  ) {}

  /** the tensor with its data in `rawData`, as if it had been written with the graph */
  async inline(t: TensorProto): Promise<void> {
    const at = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
    if (at.location !== this.name || at.length === undefined) {
      throw new Error(`tensor ${t.name}: external data in ${at.location ?? 'no file'}`);
    }
    this.file ??= open(join(dirname(this.graphPath), this.name), 'r');
    t.rawData = await readRange(await this.file, Number(at.offset ?? 0), Number(at.length));
    t.externalData = [];
    // unset, as in the tensor onnxruntime writes with its data (proto2 encodes a field set to its
    // default; onnxruntime's external writer also sets an empty doc string)
    clearField(t, TensorProtoSchema.field.dataLocation!);
    if (t.docString === '') clearField(t, TensorProtoSchema.field.docString!);
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    // a file that failed to open has already failed the read that opened it
    if (file !== undefined) await (await file.catch(() => undefined))?.close();
  }
}

const isExternal = (t: TensorProto): boolean =>
  t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0;

/** every tensor of `g` but its own initializers: those of subgraphs, attributes, sparse tensors */
function* nestedTensors(g: GraphProto, top: boolean): Generator<TensorProto> {
  if (!top) yield* g.initializer;
  for (const s of g.sparseInitializer) {
    if (s.values) yield s.values;
    if (s.indices) yield s.indices;
  }
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.t) yield a.t;
      yield* a.tensors;
      for (const s of [...(a.sparseTensor ? [a.sparseTensor] : []), ...a.sparseTensors]) {
        if (s.values) yield s.values;
        if (s.indices) yield s.indices;
      }
      if (a.g) yield* nestedTensors(a.g, false);
      for (const sub of a.graphs) yield* nestedTensors(sub, false);
    }
  }
}

/**
 * The model onnxruntime wrote to `graphPath` with its initializers in the external file `weights`
 * beside it, written to `into` as one self-contained model in `modelPieces`' form: the graph, then
 * one message per initializer, each read from `weights` just before it is written and dropped
 * after, so no more than one weight is in memory at a time.
 */
export const inlineExternalData = async (
  graphPath: string,
  weights: string,
  into: string,
): Promise<ModelFile> => {
  if (basename(weights) !== weights) throw new Error(`${weights} is not a file name`);
  const model = parseModel(await readWhole(graphPath));
  const g = model.graph;
  const data = new ExternalData(graphPath, weights);
  const out = await open(into, 'w');
  let bytes = 0;
  const write = async (piece: Uint8Array) => {
    await out.write(piece);
    bytes += piece.byteLength;
  };
  try {
    if (g !== undefined) {
      // anywhere but the main graph's initializers: few and small, inlined before the head
      for (const t of nestedTensors(g, true)) if (isExternal(t)) await data.inline(t);
    }
    await write(modelHead(model));
    for (const t of g?.initializer ?? []) {
      if (isExternal(t)) await data.inline(t);
      for (const piece of initializerPieces(t)) await write(piece);
      t.rawData = new Uint8Array(0);
    }
  } finally {
    await out.close();
    await data.close();
  }
  return { path: into, bytes };
};
