import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  valueInfo,
} from '../../src/onnx/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';

/** `y = Identity(x)` with `x` as given and `y` declared as given: the graph may lie about `y`. */
const identity = (input: (number | string)[], output: (number | string | null)[]): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'identity',
        nodes: [node('Identity', ['x'], ['y'])],
        inputs: [valueInfo('x', T.FLOAT, input)],
        outputs: [valueInfo('y', T.FLOAT, output)],
      }),
      opset: 17,
      producer: 'output-signature-test',
    }),
  );

describe('outputs checked against the signature during warm-up', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness();
  });
  afterAll(() => harness?.close());

  it.each([
    ['a fixed dim', [2, 5], [2, 3], /'y' as FP32 \[2, 3\] but produced FP32 \[2, 5\]/],
    ['the rank', [1, 5], [5], /'y' as FP32 \[5\] but produced FP32 \[1, 5\]/],
    [
      'a fixed dim behind a dynamic one',
      ['n', 4],
      ['n', 6],
      /FP32 \[n, 6\] but produced FP32 \[1, 4\]/,
    ],
  ] as const)(
    'rejects a model that lies about %s of its output',
    async (_what, input, output, reason) => {
      const name = `liar-${output.join('x')}`;
      const upload = await harness.upload(name, 'model.onnx', identity([...input], [...output]));
      const outcome = await harness.outcome(name, upload);
      expect(outcome).toMatchObject({
        event: 'rejected',
        details: { code: 'OutputSignatureMismatch', output: 'y', sample: 1 },
      });
      expect(outcome.reason).toMatch(reason);
      expect(await harness.registry.listVersions(name)).toEqual([]);
    },
  );

  it('registers a model whose dynamic dims (symbolic or unnamed) take the sizes it produces', async () => {
    const upload = await harness.upload(
      'honest',
      'model.onnx',
      identity(['n', 7], ['batch', null]),
    );
    const outcome = await harness.outcome('honest', upload);
    expect(outcome).toMatchObject({ event: 'registered', version: 1 });
  });
});
