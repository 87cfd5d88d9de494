import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestsTooDeep } from '../../src/json/index.ts';

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

describe('nestsTooDeep', () => {
  it('accepts a value nested exactly to the cap and refuses one level more', () => {
    expect(nestsTooDeep(JSON.parse(nested(MAX_JSON_DEPTH)))).toBe(false);
    expect(nestsTooDeep(JSON.parse(nested(MAX_JSON_DEPTH + 1)))).toBe(true);
  });

  it('walks half a million levels of arrays or objects without overflowing the stack', () => {
    const depth = 500_000;
    expect(nestsTooDeep(JSON.parse(nested(depth)))).toBe(true);
    expect(nestsTooDeep(JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`))).toBe(true);
  });

  it('refuses a cycle and accepts a value shared by two branches', () => {
    const cyclic: Record<string, unknown> = { inputs: [] };
    (cyclic.inputs as unknown[]).push(cyclic);
    const shared = [1, 2];
    expect(nestsTooDeep(cyclic)).toBe(true);
    expect(nestsTooDeep({ a: shared, b: [shared] })).toBe(false);
  });

  it('passes scalars and flat tensors', () => {
    expect(nestsTooDeep(3)).toBe(false);
    expect(nestsTooDeep(null)).toBe(false);
    expect(nestsTooDeep({ inputs: [{ data: Array.from({ length: 1000 }, (_, i) => i) }] })).toBe(
      false,
    );
  });
});
