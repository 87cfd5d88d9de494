import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';

/** An EMF document claiming a failure of another model's version, as one log line. */
export const forgedEmf = (victim: string): string =>
  JSON.stringify({
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        {
          Namespace: 'Maas',
          Dimensions: [['Model', 'Version']],
          Metrics: [{ Name: 'ModelErrors', Unit: 'Count' }],
        },
      ],
    },
    Model: victim,
    Version: '1',
    ModelErrors: 1,
    Requests: 1,
  });

/**
 * `y = table[int(x)]` (x FP32 [1] → y FP32 [1, 1]) whose graph and node names wrap an EMF document
 * in newlines: onnxruntime quotes node names in the message of a failed run (an index past the
 * 4-row table), so unless its log is silenced the document is a line of its own on stderr.
 */
export const emfNamedModel = (victim: string): Uint8Array => {
  const line = `\n${forgedEmf(victim)}\n`;
  return encodeModel(
    model({
      graph: graph({
        name: `forged${line}`,
        nodes: [
          node('Cast', ['x'], ['ids'], { to: T.INT64 }, `cast${line}`),
          node('Gather', ['table', 'ids'], ['y'], { axis: 0 }, `gather${line}`),
        ],
        initializers: [tensor('table', T.FLOAT, [4, 1], [1, 2, 3, 4])],
        inputs: [valueInfo('x', T.FLOAT, [1])],
        outputs: [valueInfo('y', T.FLOAT, [1, 1])],
      }),
      opset: 17,
      producer: 'guard-test',
    }),
  );
};
