import { describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  ModelRejectedError,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  validateModel,
  valueInfo,
} from '../../src/onnx/index.ts';

/** y = x + w, with one name replaced. */
const named = (names: { graph?: string; node?: string; value?: string; init?: string }) =>
  encodeModel(
    model({
      graph: graph({
        name: names.graph ?? 'g',
        nodes: [
          node('Add', ['x', names.init ?? 'w'], [names.value ?? 'y'], {}, names.node ?? 'add'),
        ],
        initializers: [tensor(names.init ?? 'w', T.FLOAT, [4], [1, 2, 3, 4])],
        inputs: [valueInfo('x', T.FLOAT, ['batch', 4])],
        outputs: [valueInfo(names.value ?? 'y', T.FLOAT, ['batch', 4])],
      }),
      opset: 17,
    }),
  );

const codeOf = (bytes: Uint8Array): string | undefined => {
  try {
    validateModel(bytes);
    return undefined;
  } catch (err) {
    return err instanceof ModelRejectedError ? err.code : String(err);
  }
};

describe('names with control characters', () => {
  it('are refused wherever a model names something', () => {
    expect(codeOf(named({ graph: 'g\n{"_aws":{}}' }))).toBe('ControlCharacterInName');
    expect(codeOf(named({ node: 'add\r' }))).toBe('ControlCharacterInName');
    expect(codeOf(named({ value: 'y\u001b[2J' }))).toBe('ControlCharacterInName');
    expect(codeOf(named({ init: 'w\u2028' }))).toBe('ControlCharacterInName');
  });

  it('leave printable names alone, Unicode included', () => {
    expect(codeOf(named({ graph: 'modèle: ünïcode / 名前 {"json": true}' }))).toBeUndefined();
  });
});
