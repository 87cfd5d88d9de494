import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCnnModel, cnnImages, SMALL_CNN } from '../../models/cnn.ts';
import { inlineExternalData } from '../../src/ingest/external-data.ts';
import { WorkDir } from '../../src/ingest/model-file.ts';
import { encodeModel, parseModel, TensorProto_DataLocation } from '../../src/onnx/index.ts';
import { quantizeModel } from '../../src/quantize/index.ts';
import { createSession, type SessionSettings } from '../../src/runtime/index.ts';
import { mlpModel } from '../support/quantize-fixtures.ts';

let dir: WorkDir;
beforeAll(async () => {
  dir = await WorkDir.create();
});
afterAll(() => dir.dispose());

/** the graph onnxruntime writes for `model` at the extended level, with `settings` added */
const written = async (model: Uint8Array, name: string, settings: SessionSettings = {}) => {
  const path = dir.file(name);
  const s = await createSession(model, {
    ...settings,
    optimizationLevel: 'extended',
    optimizedModelFilePath: path,
  });
  await s.release();
  return path;
};

const cnn = buildCnnModel(SMALL_CNN);
const mlp = mlpModel({ widths: [64, 256, 256, 8] });
const int8 = quantizeModel(mlp).bytes!;

describe('the optimized graph written with its weights beside it, then inlined', () => {
  it.each([
    ['a CNN', cnn],
    ['an MLP', mlp],
    ['a dynamic int8 MLP', int8],
  ])('is the model onnxruntime writes with the weights inside, for %s', async (name, model) => {
    const tag = name.replaceAll(' ', '-');
    const embedded = parseModel(await readFile(await written(model, `${tag}.embedded.onnx`)));
    const graph = await written(model, `${tag}.graph.onnx`, {
      optimizedInitializersFile: `${tag}.weights`,
      prepack: false,
    });
    const external = parseModel(await readFile(graph));
    expect(
      external.graph?.initializer.filter(
        (t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL,
      ).length,
    ).toBeGreaterThan(0);
    const into = dir.file(`${tag}.inlined.onnx`);
    const file = await inlineExternalData(graph, `${tag}.weights`, into);
    const inlined = await readFile(into);
    expect(file.bytes).toBe(inlined.byteLength);
    expect(Buffer.from(encodeModel(parseModel(inlined)))).toEqual(
      Buffer.from(encodeModel(embedded)),
    );
  });

  it('needs no weights file when onnxruntime wrote none (every initializer under 1 KB)', async () => {
    const tiny = mlpModel({ widths: [4, 8, 3] });
    const graph = await written(tiny, 'tiny.graph.onnx', {
      optimizedInitializersFile: 'tiny.weights',
    });
    await expect(readFile(dir.file('tiny.weights'))).rejects.toThrow(/ENOENT/);
    const embedded = parseModel(await readFile(await written(tiny, 'tiny.embedded.onnx')));
    await inlineExternalData(graph, 'tiny.weights', dir.file('tiny.inlined.onnx'));
    expect(
      Buffer.from(encodeModel(parseModel(await readFile(dir.file('tiny.inlined.onnx'))))),
    ).toEqual(Buffer.from(encodeModel(embedded)));
  });

  it('answers as the plain model, loaded from its bytes alone', async () => {
    const graph = await written(cnn, 'cnn.graph.onnx', {
      optimizedInitializersFile: 'cnn.weights',
    });
    const into = dir.file('cnn.inlined.onnx');
    await inlineExternalData(graph, 'cnn.weights', into);
    const feeds = {
      x: new ort.Tensor('float32', cnnImages(SMALL_CNN.size, 1)[0]!, [
        1,
        3,
        SMALL_CNN.size,
        SMALL_CNN.size,
      ]),
    };
    const run = async (bytes: Uint8Array) => {
      const s = await createSession(bytes);
      try {
        return Array.from((await s.run(feeds)).logits!.data as Float32Array);
      } finally {
        await s.release();
      }
    };
    const want = await run(cnn);
    const got = await run(new Uint8Array(await readFile(into)));
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(want[i]!, 4);
  });

  it('refuses external data that names another file than the one given', async () => {
    const m = parseModel(mlp);
    const w = m.graph!.initializer[0]!;
    const raw = w.rawData;
    await writeFile(dir.file('other.bin'), raw);
    w.rawData = new Uint8Array(0);
    w.dataLocation = TensorProto_DataLocation.EXTERNAL;
    w.externalData = [
      { $typeName: 'onnx.StringStringEntryProto', key: 'location', value: 'other.bin' },
      { $typeName: 'onnx.StringStringEntryProto', key: 'offset', value: '0' },
      { $typeName: 'onnx.StringStringEntryProto', key: 'length', value: String(raw.byteLength) },
    ];
    const graph = dir.file('elsewhere.onnx');
    await writeFile(graph, encodeModel(m));
    await writeFile(dir.file('mine.bin'), new Uint8Array(0));
    await expect(inlineExternalData(graph, 'mine.bin', dir.file('x.onnx'))).rejects.toThrow(
      /external data in other\.bin/,
    );
    await expect(
      inlineExternalData(graph, join('..', 'other.bin'), dir.file('y.onnx')),
    ).rejects.toThrow(/not a file name/);
  });

  it('refuses external data shorter than a tensor says', async () => {
    const m = parseModel(mlp);
    const w = m.graph!.initializer[0]!;
    const raw = w.rawData;
    await writeFile(dir.file('short.bin'), raw.subarray(0, 8));
    w.rawData = new Uint8Array(0);
    w.dataLocation = TensorProto_DataLocation.EXTERNAL;
    w.externalData = [
      { $typeName: 'onnx.StringStringEntryProto', key: 'location', value: 'short.bin' },
      { $typeName: 'onnx.StringStringEntryProto', key: 'length', value: String(raw.byteLength) },
    ];
    const graph = dir.file('short.onnx');
    await writeFile(graph, encodeModel(m));
    await expect(inlineExternalData(graph, 'short.bin', dir.file('z.onnx'))).rejects.toThrow(
      /ends before byte/,
    );
  });
});
