import { describe, expect, it } from 'vitest';
import { TensorProto_DataType, tensor } from '../../src/onnx/index.ts';
import {
  dropTransientBuffer,
  float32Shape,
  readFloat32,
  readFloat32Transient,
} from '../../src/quantize/weights.ts';

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

/** A weight whose raw data starts at an odd offset of its buffer, as protobuf hands many out. */
const unaligned = (name: string, values: number[]) => {
  const t = tensor(name, FLOAT, [values.length], Float32Array.from(values));
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  const shifted = new Uint8Array(bytes.byteLength + 1);
  shifted.set(bytes, 1);
  t.rawData = shifted.subarray(1);
  return t;
};

describe('readFloat32Transient', () => {
  it('reads unaligned weights as readFloat32 does, into one buffer reused from weight to weight', () => {
    const a = unaligned('a', [1.5, -2, 3.25, 4]);
    const b = unaligned('b', [0.5, 7]);
    const first = readFloat32Transient(a);
    expect(first.ok && Array.from(first.data)).toEqual([1.5, -2, 3.25, 4]);
    const firstBuffer = first.ok ? first.data.buffer : undefined;
    const second = readFloat32Transient(b);
    expect(second.ok && Array.from(second.data)).toEqual([0.5, 7]);
    expect(second.ok && second.data.buffer).toBe(firstBuffer);
    const copied = readFloat32(a);
    expect(copied.ok && copied.data.buffer).not.toBe(firstBuffer);
    dropTransientBuffer();
    const third = readFloat32Transient(b);
    expect(third.ok && third.data.buffer).not.toBe(firstBuffer);
  });
});
