import { describe, expect, it } from 'vitest';
import { TensorProto_DataType, tensor } from '../../src/onnx/index.ts';
import { float32Shape, readFloat32 } from '../../src/quantize/weights.ts';

const { FLOAT, INT32 } = TensorProto_DataType;

describe('float32Shape', () => {
  it('gives the dims and element count readFloat32 reads, without reading the values', () => {
    const t = tensor(
      'w',
      FLOAT,
      [3, 4],
      Float32Array.from({ length: 12 }, (_, i) => i),
    );
    const read = readFloat32(t);
    const shape = float32Shape(t);
    expect(read.ok && shape.ok).toBe(true);
    if (!read.ok || !shape.ok) return;
    expect(shape.dims).toEqual(read.dims);
    expect(shape.elements).toBe(read.data.length);
  });

  it('refuses what readFloat32 refuses, with the same reason', () => {
    const ints = tensor('i', INT32, [2], Int32Array.from([1, 2]));
    const short = tensor('s', FLOAT, [2], Float32Array.from([1, 2]));
    short.dims = [3n];
    for (const t of [ints, short]) {
      const shape = float32Shape(t);
      expect(shape.ok).toBe(false);
      expect(shape).toEqual(readFloat32(t));
    }
  });
});
