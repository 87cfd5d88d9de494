import { readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { FunctionProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { MaasError } from '../../src/errors/index.ts';
import {
  encodeModel,
  graph,
  ModelRejectedError,
  model,
  node,
  REJECTION_CODES,
  TensorProto_DataType as T,
  tensor,
  validateModel,
  valueInfo,
} from '../../src/onnx/index.ts';
import { hostileModels, shadowingFunctionModel } from '../support/hostile-models.ts';
import { exampleModels, THIRD_PARTY_MODELS, tinyModel } from '../support/models.ts';

const rejection = (bytes: Uint8Array, limits = {}): ModelRejectedError => {
  try {
    validateModel(bytes, limits);
  } catch (err) {
    if (err instanceof ModelRejectedError) return err;
    throw err;
  }
  throw new Error('the model was accepted');
};

describe('validateModel on the hostile corpus', () => {
  const corpus = hostileModels();

  it.each(corpus.map((c) => [c.name, c] as const))('rejects %s', (_, c) => {
    const err = rejection(c.bytes, c.limits);
    expect(err).toBeInstanceOf(MaasError);
    expect(err.code).toBe(c.expectedCode);
    expect(err.reason).toBe(c.expectedCode);
    expect(err.message).toContain(c.messageIncludes);
  });

  it('gives every case its own reason, and every rejection code is exercised', () => {
    const reasons = corpus.map((c) => `${c.expectedCode}: ${rejection(c.bytes, c.limits).message}`);
    expect(new Set(reasons).size).toBe(corpus.length);
    expect(new Set(corpus.map((c) => c.expectedCode))).toEqual(new Set(REJECTION_CODES));
  });

  it('tells the sender what to send instead', () => {
    for (const c of corpus) {
      expect(rejection(c.bytes, c.limits).message).toMatch(
        /(Send|Upload|Export|export|Save|Fix|use |Use )/,
      );
    }
  });

  it('accepts the size-capped model once the cap is back to its default', () => {
    const capped = corpus.find((c) => c.expectedCode === 'TooLarge')!;
    expect(validateModel(capped.bytes).signature.inputs[0]?.name).toBe('x');
  });
});

describe('validateModel on good models', () => {
  it('accepts the example models and returns their signatures', async () => {
    const { iris, encoder } = await exampleModels();
    expect(validateModel(await readFile(iris.path)).signature.outputs.map((o) => o.name)).toEqual([
      'probabilities',
      'label',
    ]);
    const { signature } = validateModel(await readFile(encoder.path));
    expect(signature.inputs.map((i) => i.name)).toEqual(['input_ids', 'attention_mask']);
  });

  it.each(THIRD_PARTY_MODELS.map((m) => [m.name, m.path]))(
    'accepts the third-party %s model (control flow, Constant weights)',
    async (_, path) => {
      const { signature } = validateModel(await readFile(path));
      expect(signature.opHistogram.If).toBeGreaterThan(0);
    },
  );

  it('accepts the contrib ops the quantizer emits, and no other com.microsoft op', () => {
    const quantized = (opType: string): Uint8Array =>
      encodeModel(
        model({
          graph: graph({
            nodes: [
              node('DynamicQuantizeLinear', ['x'], ['xq', 'xs', 'xz']),
              node(opType, ['x', 'wq', 'ws', 'wz'], ['y'], {}, { domain: 'com.microsoft' }),
            ],
            inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
            outputs: [valueInfo('y', T.FLOAT, ['batch', 2])],
            initializers: [
              tensor('wq', T.INT8, [4, 2], [1, -2, 3, -4, 5, -6, 7, -8]),
              tensor('ws', T.FLOAT, [2], [0.1, 0.2]),
              tensor('wz', T.INT8, [2], [0, 0]),
            ],
          }),
          opset: [
            { domain: '', version: 17 },
            { domain: 'com.microsoft', version: 1 },
          ],
        }),
      );
    expect(() => validateModel(quantized('DynamicQuantizeMatMul'))).not.toThrow();
    expect(rejection(quantized('FusedMatMul')).code).toBe('DisallowedOp');
  });

  it('accepts calls to functions defined in the model and checks their bodies', () => {
    const withFunction = (bodyDomain: string): Uint8Array => {
      const m = model({
        graph: graph({
          nodes: [node('AddOne', ['x'], ['y'], {}, { domain: 'local' })],
          inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
          outputs: [valueInfo('y', T.FLOAT, ['batch', 4])],
        }),
        opset: [
          { domain: '', version: 17 },
          { domain: 'local', version: 1 },
        ],
      });
      m.functions = [
        create(FunctionProtoSchema, {
          name: 'AddOne',
          domain: 'local',
          input: ['a'],
          output: ['b'],
          node: [
            node('Constant', [], ['one'], { value: tensor('one', T.FLOAT, [], [1]) }),
            node('Add', ['a', 'one'], ['b'], {}, { domain: bodyDomain }),
          ],
          opsetImport: [{ domain: '', version: 17n }],
        }),
      ];
      return encodeModel(m);
    };
    expect(() => validateModel(withFunction(''))).not.toThrow();
    const err = rejection(withFunction('com.evil'));
    expect(err.code).toBe('DisallowedOp');
    expect(err.message).toContain("function 'local::AddOne'");
  });

  it('refuses model-local functions that shadow an operator domain onnxruntime implements', () => {
    const cases: [string, Uint8Array][] = [
      ['com.microsoft::Gelu', shadowingFunctionModel('com.microsoft')],
      [
        'com.microsoft::DynamicQuantizeMatMul',
        shadowingFunctionModel('com.microsoft', { opType: 'DynamicQuantizeMatMul' }),
      ],
      ['ai.onnx (empty domain) ::Relu', shadowingFunctionModel('', { opType: 'Relu' })],
      ['ai.onnx::Relu', shadowingFunctionModel('ai.onnx', { opType: 'Relu' })],
      ['ai.onnx.ml::Normalizer', shadowingFunctionModel('ai.onnx.ml', { opType: 'Normalizer' })],
      [
        'com.microsoft.nchwc::Conv',
        shadowingFunctionModel('com.microsoft.nchwc', { opType: 'Conv' }),
      ],
      [
        'ai.onnx.preview.training::Adagrad',
        shadowingFunctionModel('ai.onnx.preview.training', { opType: 'Adagrad' }),
      ],
      [
        'com.ms.internal.nhwc::Conv',
        shadowingFunctionModel('com.ms.internal.nhwc', { opType: 'Conv' }),
      ],
    ];
    for (const [name, bytes] of cases) {
      const err = rejection(bytes);
      expect(err.code, name).toBe('ShadowedOp');
      expect(err.message, name).toContain('implements itself');
    }
    expect(() => validateModel(shadowingFunctionModel('local.functions'))).not.toThrow();
  });

  it('refuses operator names whose resolution could differ between this check and the runtime', () => {
    // invalid UTF-8 decodes to U+FFFD here: two different byte strings would match each other
    expect(rejection(shadowingFunctionModel('local\uFFFD')).code).toBe('ShadowedOp');
    expect(
      rejection(shadowingFunctionModel('com.microsoft ', { functionDomain: 'com.microsoft ' }))
        .code,
    ).toBe('ShadowedOp');
    // the function is (local, Gelu, ''), the node asks for overload 'v2': not the same function
    expect(rejection(shadowingFunctionModel('local', { nodeOverload: 'v2' })).code).toBe(
      'DisallowedOp',
    );
    // an overload of a standard op does not exist: the node would resolve to the runtime's op
    const m = shadowingFunctionModel('', {
      opType: 'Relu',
      functionDomain: 'local',
      nodeOverload: 'x',
    });
    expect(rejection(m).code).toBe('DisallowedOp');
  });

  it('reads tiny generated models in well under the size cap', () => {
    expect(validateModel(tinyModel({ paddingFloats: 1000 })).signature.parameterCount).toBe(1004);
  });
});
