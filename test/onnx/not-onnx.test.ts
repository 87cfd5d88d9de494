import { describe, expect, it } from 'vitest';
import { ModelRejectedError, validateModel } from '../../src/onnx/index.ts';
import { mulberry32 } from '../../src/util/index.ts';

const reasonFor = (bytes: Uint8Array): ModelRejectedError => {
  try {
    validateModel(bytes);
  } catch (err) {
    if (err instanceof ModelRejectedError) return err;
    throw err;
  }
  throw new Error('accepted');
};

describe('a file that is not ONNX', () => {
  it('is rejected in words about the file, never the protobuf decoder internals', () => {
    const random = mulberry32(4);
    for (let i = 0; i < 50; i++) {
      const bytes = Uint8Array.from({ length: 64 + i * 7 }, () => Math.floor(random() * 256));
      const err = reasonFor(bytes);
      if (err.code !== 'NotOnnx') continue;
      expect(err.message).not.toMatch(/wire type|premature|invalid|varint|cant|skip/i);
      expect(err.message).toContain('do not decode as an ONNX ModelProto');
    }
  });

  it('says what the file is when it is recognisably something else', () => {
    const text = (s: string) => new TextEncoder().encode(s);
    expect(reasonFor(text('PK\x03\x04 model.onnx inside')).message).toContain('zip archive');
    expect(reasonFor(text('{"inputs": []}')).message).toContain('JSON text');
    expect(reasonFor(text('just some words')).message).toContain('plain text');
  });
});
