import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/json/index.ts';
import { type Harness, startHarness } from '../support/ingest-harness.ts';
import { tinyModel } from '../support/models.ts';

const DEPTH = 2_000_000;

let harness: Harness;
beforeAll(async () => {
  harness = await startHarness();
});
afterAll(async () => {
  await harness?.close();
});

describe('samples nested deeper than the cap', () => {
  it('rejects the upload with InvalidSamples on its first delivery', async () => {
    const deep = `${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}`;
    const samples = `[{"inputs": [{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}], "p": ${deep}}]`;
    const upload = await harness.upload('deep-samples', 'tiny.onnx', tinyModel(), { samples });

    const outcome = await harness.outcome('deep-samples', upload);
    await harness.settled();

    expect(outcome).toMatchObject({ event: 'rejected', details: { code: 'InvalidSamples' } });
    expect(outcome.reason).toContain(`more than ${MAX_JSON_DEPTH} levels deep`);
    expect(harness.errors).toEqual([]);
    expect(harness.results.filter((r) => r.status !== 'ignored').map((r) => r.status)).toEqual([
      'rejected',
    ]);
  });
});
