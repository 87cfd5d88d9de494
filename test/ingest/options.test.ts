import { describe, expect, it } from 'vitest';
import { UploadRejectedError } from '../../src/ingest/index.ts';
import { describeAccuracy, parseUploadOptions } from '../../src/ingest/options.ts';

describe('maas-accuracy', () => {
  it.each([
    ['cosine', { metric: 'cosine' }],
    ['top1', { metric: 'top1' }],
    [' TOP1:0.99 ', { metric: 'top1', min: 0.99 }],
    ['cosine:0.99', { metric: 'cosine', min: 0.99 }],
  ])('reads %j', (value, accuracy) => {
    expect(parseUploadOptions({ 'maas-accuracy': value }).accuracy).toEqual(accuracy);
  });

  it('leaves the test to the gate’s configuration when absent', () => {
    expect(parseUploadOptions({}).accuracy).toBeUndefined();
  });

  it.each(['l2', 'top1:0.5', 'cosine:1.5', 'cosine:', 'top1:0.99:1'])(
    'rejects %j with what to send instead',
    (value) => {
      const read = () => parseUploadOptions({ 'maas-accuracy': value });
      expect(read).toThrow(UploadRejectedError);
      expect(read).toThrow(/set it to `cosine`, `top1`, or either with a minimum from 0.9 to 1/);
    },
  );

  it('names the test as the manifest records it', () => {
    expect(describeAccuracy({ metric: 'cosine' }, 0.999)).toBe('cosine>=0.999');
    expect(describeAccuracy({ metric: 'top1' }, 0.999)).toBe('top1>=0.98');
    expect(describeAccuracy({ metric: 'cosine', min: 0.99 }, 0.999)).toBe('cosine>=0.99');
  });
});
