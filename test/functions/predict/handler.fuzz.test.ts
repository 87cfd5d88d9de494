import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fuzzEvent } from '../../support/fuzz/arbitraries.ts';
import { eventViolations } from '../../support/fuzz/oracle.ts';
import { createFuzzTargets, type FuzzTargets } from '../../support/fuzz/targets.ts';

let targets: FuzzTargets;

beforeAll(async () => {
  targets = await createFuzzTargets();
});
afterAll(() => targets?.close());

it('never throws, never answers a 5xx, and refuses with a JSON error (Lambda handler, payload 2.0)', async () => {
  await fc.assert(
    fc.asyncProperty(fuzzEvent, async ({ family, event }) => {
      const result = await targets.invoke(event);
      expect(eventViolations(result), `${family}: ${event.rawPath.slice(0, 120)}`).toEqual([]);
    }),
    { numRuns: 140 },
  );
});
