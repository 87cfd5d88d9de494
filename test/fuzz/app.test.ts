import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fuzzRequest } from './arbitraries.ts';
import { violations } from './oracle.ts';
import { createFuzzTargets, type FuzzTargets } from './targets.ts';

let targets: FuzzTargets;

beforeAll(async () => {
  targets = await createFuzzTargets();
});
afterAll(() => targets?.close());

/** `bench/fuzz.ts` runs the same property 10,000+ times; this is its smoke-sized share. */
it('never answers a 5xx and refuses every bad request with a JSON error (protocol app)', async () => {
  await fc.assert(
    fc.asyncProperty(fuzzRequest, async ({ family, request }) => {
      const res = await targets.app(request);
      expect(violations(res), `${family}: ${request.method} ${request.path.slice(0, 120)}`).toEqual(
        [],
      );
    }),
    { numRuns: 160 },
  );
});
