import { describe, expect, it } from 'vitest';
import { type ChooseInput, chooseInt8 } from '../../src/ingest/choose.ts';
import { quantizeModel, SCHEME_MATMUL_INTEGER } from '../../src/quantize/index.ts';
import { floatFeed, mlpModel } from '../support/quantize-fixtures.ts';

// two weights of 131,072 elements each: share 1 signs both, 0.75 both again, 0.5 one
const fp32 = mlpModel({ widths: [256, 512, 256] });
const feeds = [{ x: floatFeed([16, 256], 21) }, { x: floatFeed([4, 256], 22) }];

const choose = (minCosine: number, tried: { share: number; signed: number }[]) => {
  const input: ChooseInput = {
    fp32,
    samples: { feeds, source: 'sidecar' },
    // accuracy alone decides, and a tie in size goes to the uint8 variant tried first
    gate: { minCosine, objective: 'size', runs: 1 },
    session: {},
    dynamic: () => quantizeModel(fp32),
    mixedDynamic: (signedShare) => quantizeModel(fp32, { signedShare }),
    check: () => undefined,
    staticScheme: false,
    log: (message, attributes) => {
      if (message === 'ingest: mixed int8 candidate') {
        tried.push({ share: attributes.share as number, signed: attributes.signed as number });
      }
    },
  };
  return chooseInt8(input);
};

describe('chooseInt8 with the mixed dynamic variant', () => {
  it('gates the first share of signed weights that keeps the accuracy beside the uint8 variant', async () => {
    const tried: { share: number; signed: number }[] = [];
    const choice = await choose(0.999, tried);
    // signing both weights costs this MLP about 0.0002 of cosine: the first rung passes
    expect(tried).toEqual([{ share: 1, signed: 2 }]);
    expect(choice.int8).toBeDefined();
    expect(choice.report.scheme).toBe(SCHEME_MATMUL_INTEGER);
    expect(choice.alternatives).toHaveLength(1);
    const [mixed] = choice.alternatives;
    expect(mixed?.scheme).toContain(
      'the 2 largest of 2, 100% of weight elements, signed within ±64',
    );
    expect(mixed?.accepted).toBe(true);
    expect(mixed?.cosine).toBeGreaterThanOrEqual(0.999);
    expect(mixed?.cosine).toBeLessThan(choice.gate?.cosine ?? 0);
  });

  it('walks the ladder, skipping a share that signs the same weights, and records why none passed', async () => {
    const tried: { share: number; signed: number }[] = [];
    // uint8 weights keep 0.9999 on these samples, signed ones do not
    const choice = await choose(0.9999, tried);
    expect(tried).toEqual([
      { share: 1, signed: 2 },
      { share: 0.5, signed: 1 },
    ]);
    expect(choice.int8).toBeDefined();
    expect(choice.report.scheme).toBe(SCHEME_MATMUL_INTEGER);
    expect(choice.alternatives).toEqual([
      {
        scheme: expect.stringContaining('the 1 largest of 2, 50% of weight elements'),
        accepted: false,
        decision: expect.stringMatching(
          /^not timed: fp32 served: int8 cosine similarity 0\.999[0-8]\d* is below the minimum 0\.9999/,
        ),
      },
    ]);
  });
});
