import { Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { INPUT_HEADROOM, learnInputLimits } from '../../src/ingest/ingest.ts';
import { parseUploadOptions } from '../../src/ingest/options.ts';
import type { SampleSet } from '../../src/ingest/samples.ts';

const sidecar = (...shapes: number[][]): SampleSet => ({
  source: 'sidecar',
  feeds: shapes.map((shape) => ({
    x: new Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape),
  })),
});

describe('the per-model input bound', () => {
  it('is the largest sample request times the headroom', () => {
    expect(learnInputLimits({}, sidecar([1, 4], [6, 4], [2, 4]))).toEqual({
      maxElements: 24 * INPUT_HEADROOM,
      source: 'samples',
    });
  });

  it('is not learned from inputs synthesized from the signature', () => {
    expect(learnInputLimits({}, { ...sidecar([1, 4]), source: 'synthesized' })).toBeUndefined();
  });

  it('takes maas-max-elements over the samples, and off for none', () => {
    const samples = sidecar([1, 4]);
    const set = parseUploadOptions({ 'maas-max-elements': ' 5000 ' });
    const off = parseUploadOptions({ 'maas-max-elements': 'OFF' });
    expect(learnInputLimits(set, samples)).toEqual({ maxElements: 5000, source: 'metadata' });
    expect(learnInputLimits(off, samples)).toBeUndefined();
  });

  it('refuses a maas-max-elements that is not a whole number of elements', () => {
    for (const value of ['0', '-3', '1.5', 'lots', '']) {
      expect(() => parseUploadOptions({ 'maas-max-elements': value }), value).toThrow(
        /maas-max-elements=.* is not valid: set it to a whole number of elements, or `off`/,
      );
    }
  });
});
