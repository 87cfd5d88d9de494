import { describe, expect, it } from 'vitest';
import { evaluateVariants } from '../../src/ingest/index.ts';
import { InvalidGateInputError, quantizeModel } from '../../src/quantize/index.ts';
import { floatFeed, mlpModel } from '../support/quantize-fixtures.ts';

const fp32 = mlpModel({ widths: [256, 512, 256] });
const int8 = quantizeModel(fp32).bytes!;
const samples = [{ x: floatFeed([1, 256], 31) }, { x: floatFeed([8, 256], 32) }];

describe('evaluateVariants', () => {
  it('accepts an accurate int8 variant under the size objective, with every figure filled in', async () => {
    const r = await evaluateVariants({
      fp32Bytes: fp32,
      int8Bytes: int8,
      samples,
      options: { objective: 'size', runs: 2 },
    });
    expect(r.accept).toBe(true);
    expect(r.decision).toMatch(/^int8 served: cosine 0\.99\d+ ≥ 0\.999/);
    expect(r.cosine).toBeGreaterThanOrEqual(0.999);
    expect(r.cosine).toBeLessThanOrEqual(1);
    expect(r.maxAbsError).toBeGreaterThan(0);
    expect(r.top1Agreement).toBeGreaterThan(0.8);
    expect(r.sizeRatio).toBeCloseTo(int8.byteLength / fp32.byteLength, 10);
    expect(r.latencyRatio).toBeCloseTo(r.int8P50Ms / r.fp32P50Ms, 10);
    expect(r.timedRuns).toBe(4);
    for (const v of [r.fp32P50Ms, r.int8P50Ms, r.fp32CreateMs, r.int8CreateMs]) {
      expect(v).toBeGreaterThan(0);
    }
  });

  it('under the latency objective, accepts exactly when int8 is accurate and no slower', async () => {
    const r = await evaluateVariants({
      fp32Bytes: fp32,
      int8Bytes: int8,
      samples,
      options: { runs: 3 },
    });
    expect(r.cosine).toBeGreaterThanOrEqual(0.999);
    expect(r.accept).toBe(r.latencyRatio <= 1);
    if (!r.accept) expect(r.decision).toMatch(/^fp32 served: int8 is not faster/);
  });

  it('rejects a model whose weight outliers wreck int8 accuracy, saying so', async () => {
    const outliers = mlpModel({ widths: [256, 512, 256], outlier: 1000 });
    const { bytes, report } = quantizeModel(outliers);
    expect(report.status).toBe('applied');
    const r = await evaluateVariants({
      fp32Bytes: outliers,
      int8Bytes: bytes!,
      // input feature 0, the one with the huge weights, is never active
      samples: [{ x: floatFeed([8, 256], 33, 0) }],
      options: { objective: 'size', runs: 1 },
    });
    expect(r.accept).toBe(false);
    expect(r.cosine).toBeLessThan(0.999);
    expect(r.decision).toMatch(
      /^fp32 served: int8 cosine similarity 0\.\d+ is below the minimum 0\.999 .*too much accuracy$/,
    );
  });

  it('honours a configured minimum cosine', async () => {
    const r = await evaluateVariants({
      fp32Bytes: fp32,
      int8Bytes: int8,
      samples,
      options: { minCosine: 1, objective: 'size', runs: 1 },
    });
    expect(r.accept).toBe(false);
    expect(r.decision).toMatch(/below the minimum 1 /);
  });

  it('rejects an int8 variant onnxruntime cannot load instead of throwing', async () => {
    const r = await evaluateVariants({
      fp32Bytes: fp32,
      int8Bytes: int8.subarray(0, 1000),
      samples,
    });
    expect(r.accept).toBe(false);
    expect(r.decision).toMatch(/^fp32 served: the int8 variant failed to load in onnxruntime \(/);
    expect(r.cosine).toBeNaN();
  });

  it('refuses to judge without samples or with a minimum cosine outside (0, 1]', async () => {
    await expect(
      evaluateVariants({ fp32Bytes: fp32, int8Bytes: int8, samples: [] }),
    ).rejects.toBeInstanceOf(InvalidGateInputError);
    await expect(
      evaluateVariants({ fp32Bytes: fp32, int8Bytes: int8, samples, options: { minCosine: 1.5 } }),
    ).rejects.toThrow(/minCosine 1.5 is outside \(0, 1\]/);
  });
});
