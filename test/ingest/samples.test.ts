import { describe, expect, it } from 'vitest';
import { decodeSidecar, synthesizeSamples, UploadRejectedError } from '../../src/ingest/index.ts';
import type { TensorSpec } from '../../src/onnx/index.ts';

const signature: { inputs: TensorSpec[]; outputs: TensorSpec[] } = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
};
const limits = { maxSamples: 2, maxElements: 1024 };
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const sample = (data: number[]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape: [data.length / 4, 4], data }],
});

const rejection = (body: Uint8Array): UploadRejectedError => {
  try {
    decodeSidecar('incoming/m/a.samples.json', body, signature, limits);
  } catch (err) {
    if (err instanceof UploadRejectedError) return err;
    throw err;
  }
  throw new Error('the sidecar was accepted');
};

describe('decodeSidecar', () => {
  it('decodes V2 request bodies into feeds, the first maxSamples of them', () => {
    const set = decodeSidecar(
      'incoming/m/a.samples.json',
      json([sample([1, 2, 3, 4]), sample([0, 0, 0, 0, 5, 6, 7, 8]), sample([9, 9, 9, 9])]),
      signature,
      limits,
    );
    expect(set.source).toBe('sidecar');
    expect(set.feeds).toHaveLength(2);
    expect(set.feeds[1]?.x?.dims).toEqual([2, 4]);
    expect(Array.from(set.feeds[0]?.x?.data as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('rejects a file that is not JSON, naming the file and the shape to send', () => {
    const err = rejection(new TextEncoder().encode('[{"inputs": '));
    expect(err.code).toBe('InvalidSamples');
    expect(err.message).toContain('incoming/m/a.samples.json');
    expect(err.message).toContain('is not valid UTF-8 JSON');
    expect(err.message).toContain('a JSON array of Open Inference Protocol V2 request bodies');
  });

  it('rejects an empty array and a non-array', () => {
    expect(rejection(json([])).message).toContain('is not a non-empty JSON array');
    expect(rejection(json({ inputs: [] })).message).toContain('is not a non-empty JSON array');
  });

  it('rejects a sample the API would refuse, with the API’s words and its number', () => {
    const err = rejection(json([sample([1, 2, 3, 4]), sample([1, 2, 3])]));
    expect(err.code).toBe('InvalidSamples');
    expect(err.message).toMatch(/unusable sample #2: .*shape/);
  });
});

describe('synthesizeSamples', () => {
  it('makes four deterministic samples from the signature, dynamic dims as 1', () => {
    const a = synthesizeSamples(signature.inputs);
    const b = synthesizeSamples(signature.inputs);
    expect(a.source).toBe('synthesized');
    expect(a.feeds).toHaveLength(4);
    expect(a.feeds[0]?.x?.dims).toEqual([1, 4]);
    expect(Array.from(a.feeds[2]?.x?.data as Float32Array)).toEqual(
      Array.from(b.feeds[2]?.x?.data as Float32Array),
    );
    for (const v of (a.feeds[0]?.x?.data ?? []) as Float32Array) {
      expect(Math.abs(v)).toBeLessThanOrEqual(1);
    }
  });

  it('fills integer inputs with 1 and booleans with true, valid as indices and masks', () => {
    const { feeds } = synthesizeSamples([
      { name: 'ids', datatype: 'INT64', shape: [1, 3] },
      { name: 'mask', datatype: 'BOOL', shape: [3] },
    ]);
    expect(Array.from(feeds[0]?.ids?.data as BigInt64Array)).toEqual([1n, 1n, 1n]);
    expect(Array.from(feeds[0]?.mask?.data as Uint8Array)).toEqual([1, 1, 1]);
  });
});
