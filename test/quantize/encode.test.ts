import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { encodeModel, parseModel, validateModel } from '../../src/onnx/index.ts';
import { modelPieces, quantizeModel } from '../../src/quantize/index.ts';
import { floatFeed, mlpModel } from '../support/quantize-fixtures.ts';

const fp32 = mlpModel({ widths: [64, 128, 32], seed: 11 });

const outputs = async (bytes: Uint8Array) => {
  const s = await ort.InferenceSession.create(bytes);
  try {
    return Array.from((await s.run({ x: floatFeed([2, 64], 3) })).y!.data as Float32Array);
  } finally {
    await s.release();
  }
};

describe('a model encoded in pieces', () => {
  it('decodes, validates and runs as the model encoded in one buffer, its weights uncopied', async () => {
    const model = parseModel(fp32);
    const pieces = [...modelPieces(model)];
    // each tensor's raw data is handed out as it is, not copied
    for (const t of model.graph!.initializer) expect(pieces).toContain(t.rawData);
    const joined = Buffer.concat(pieces);
    const back = parseModel(joined);
    expect(encodeModel(back)).toEqual(encodeModel(model));
    expect(validateModel(joined).signature).toEqual(validateModel(fp32).signature);
    expect(await outputs(joined)).toEqual(await outputs(fp32));
  });

  it('is what a quantizer’s result holds, and what its size ratio counts', async () => {
    const result = quantizeModel(fp32);
    expect(result.model).toBeDefined();
    const bytes = result.bytes!;
    expect(Buffer.concat([...modelPieces(result.model!)])).toEqual(Buffer.from(bytes));
    expect(result.report.sizeRatio).toBe(bytes.byteLength / fp32.byteLength);
    expect(parseModel(bytes).graph!.initializer.length).toBe(
      result.model!.graph!.initializer.length,
    );
  });
});
