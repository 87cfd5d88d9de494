import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { uploadInputs } from '../../src/ingest/index.ts';

describe('uploadInputs', () => {
  it('is the same for the same samples and options, whatever the order of the metadata', () => {
    const a = uploadInputs({ 'maas-quantize': 'off', 'maas-promote': 'now' }, 'e1');
    const b = uploadInputs({ 'maas-promote': 'now', 'maas-quantize': 'off' }, 'e1');
    expect(a).toBe(b);
  });

  it('tells apart every option that changes the outcome, and the samples', () => {
    const base = { 'maas-quantize': 'on' };
    const seen = new Set([
      uploadInputs(base, 'e1'),
      uploadInputs(base, 'e2'),
      uploadInputs(base, undefined),
      uploadInputs({ ...base, 'maas-quantize': 'off' }, 'e1'),
      uploadInputs({ ...base, 'maas-promote': 'manual' }, 'e1'),
      uploadInputs({ ...base, 'maas-canary-weight': '0.5' }, 'e1'),
      uploadInputs({ ...base, 'maas-accuracy': 'top1' }, 'e1'),
      uploadInputs({ ...base, 'maas-accuracy': 'top1:0.99' }, 'e1'),
      uploadInputs({ ...base, 'maas-max-elements': '1000' }, 'e1'),
      uploadInputs({ ...base, 'maas-max-elements': 'off' }, 'e1'),
    ]);
    expect(seen.size).toBe(10);
  });

  it('keeps the identity uploads had before the accuracy and element options existed', () => {
    const legacy = createHash('sha256')
      .update('samples=e1\nquantize=on;promote=canary;weight=')
      .digest('hex')
      .slice(0, 32);
    expect(uploadInputs({}, 'e1')).toBe(legacy);
  });
});
