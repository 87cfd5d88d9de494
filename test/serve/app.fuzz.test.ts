import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fuzzRequest, runtimeRefusals } from '../support/fuzz/arbitraries.ts';
import { RUNTIME_INTERNALS, violations } from '../support/fuzz/oracle.ts';
import { createFuzzTargets, type FuzzTargets } from '../support/fuzz/targets.ts';

let targets: FuzzTargets;

beforeAll(async () => {
  targets = await createFuzzTargets();
});
afterAll(() => targets?.close());

it('never shows a path of the runtime sources, or its kernel names, in an answer', async () => {
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(runtimeRefusals, async (request) => {
      const res = await targets.app(request);
      const body = Buffer.from(res.body as Uint8Array).toString();
      if (res.status === 400) refused += 1;
      expect(body).not.toMatch(RUNTIME_INTERNALS);
      expect(violations(res)).toEqual([]);
    }),
    { numRuns: 60 },
  );
  // the property saw the runtime refuse, not only the codec
  expect(refused).toBeGreaterThan(5);
});

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
