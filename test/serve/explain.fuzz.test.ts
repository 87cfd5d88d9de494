import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { explainRequest, explainV1Request } from '../support/fuzz/explain-arbitraries.ts';
import { violations } from '../support/fuzz/oracle.ts';
import { createFuzzTargets, type FuzzTargets } from '../support/fuzz/targets.ts';

let targets: FuzzTargets;

beforeAll(async () => {
  targets = await createFuzzTargets();
});
afterAll(() => targets?.close());

it('never answers a 5xx to explain requests, whatever their parameters', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(explainRequest(), explainV1Request()),
      async ({ family, request }) => {
        const res = await targets.app(request);
        const body = typeof res.body === 'string' ? res.body.slice(0, 200) : '';
        expect(violations(res), `${family}: ${request.path} ${body}`).toEqual([]);
      },
    ),
    { numRuns: 200 },
  );
});

it('explains some fuzzed requests: the generator reaches the methods, not only the refusals', async () => {
  let explained = 0;
  await fc.assert(
    fc.asyncProperty(explainRequest(), async ({ request }) => {
      if ((await targets.app(request)).status === 200) explained++;
    }),
    { numRuns: 120 },
  );
  expect(explained).toBeGreaterThan(0);
});
