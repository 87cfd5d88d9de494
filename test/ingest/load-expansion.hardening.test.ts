import { describe, expect, it } from 'vitest';
import {
  encodeModel,
  graph,
  model,
  node,
  TensorProto_DataType as T,
  tensor,
  valueInfo,
} from '../../src/onnx/index.ts';
import { startHarness } from '../support/ingest-harness.ts';

/**
 * `y = x · Expand(0.001, [rows, cols])`: a file of a few hundred bytes whose weight onnxruntime
 * builds at load by constant folding (found by attack: 170 bytes became 512 MB in memory).
 */
const expandingModel = (rows: number, cols: number): Uint8Array =>
  encodeModel(
    model({
      graph: graph({
        name: 'expand',
        nodes: [node('Expand', ['v', 'shape'], ['w']), node('MatMul', ['x', 'w'], ['y'])],
        initializers: [
          tensor('v', T.FLOAT, [], [0.001]),
          tensor('shape', T.INT64, [2], [rows, cols]),
        ],
        inputs: [valueInfo('x', T.FLOAT, ['batch', rows])],
        outputs: [valueInfo('y', T.FLOAT, ['batch', cols])],
      }),
      opset: 17,
    }),
  );

describe('a model that expands when loaded', () => {
  it('is rejected with the memory it took, and a small one of the same shape registers', async () => {
    const h = await startHarness({ settings: { loadSlackBytes: 16 * 1024 * 1024 } });
    try {
      // 2048 × 4096 floats: 32 MB from a file of about 200 bytes
      const bomb = expandingModel(2048, 4096);
      expect(bomb.byteLength).toBeLessThan(1000);
      const ref = await h.upload('bomb', 'model.onnx', bomb);
      const outcome = await h.outcome('bomb', ref);
      expect(outcome.event).toBe('rejected');
      expect(outcome.details?.code).toBe('LoadTooLarge');
      expect(outcome.reason).toMatch(/of memory to load this \d+ bytes model.*as initializers\.$/);
      const small = await h.upload('small', 'model.onnx', expandingModel(16, 8));
      expect((await h.outcome('small', small)).event).toBe('registered');
    } finally {
      await h.close();
    }
  });
});
