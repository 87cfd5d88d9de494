import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_DEFAULTS } from '../../src/ingest/index.ts';
import { hostileModels } from '../support/hostile-models.ts';
import { type Harness, registryKeys, startHarness } from '../support/ingest-harness.ts';

const corpus = hostileModels();
const modelName = (index: number) => `hostile-${index}`;

describe('hostile models uploaded for real', () => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await startHarness({
      depsFor: (model) => {
        const limits = corpus[Number(model.slice('hostile-'.length))]?.limits ?? {};
        const { maxBytes, ...rest } = limits;
        return {
          validationLimits: rest,
          settings: {
            ...INGEST_DEFAULTS,
            intraOpThreads: 1,
            maxModelBytes: maxBytes ?? INGEST_DEFAULTS.maxModelBytes,
          },
        };
      },
    });
  });
  afterAll(() => harness?.close());

  it.each(corpus.map((c, i) => [c.name, i] as const))(
    '%s ends as one rejection record and nothing else',
    async (_name, index) => {
      const hostile = corpus[index];
      if (hostile === undefined) throw new Error(`no case ${index}`);
      const model = modelName(index);
      const upload = await harness.upload(model, 'model.onnx', hostile.bytes);
      const outcome = await harness.outcome(model, upload);
      expect(outcome).toMatchObject({
        event: 'rejected',
        actor: 'ingest',
        details: { code: hostile.expectedCode, sourceKey: upload.sourceKey, etag: upload.etag },
      });
      expect(outcome.reason).toContain(hostile.messageIncludes);
      await harness.settled();
      const stored = (await registryKeys(harness, model)).filter((k) => !k.startsWith('uploads/'));
      expect(stored).toEqual([expect.stringMatching(/^history\/\d+-[0-9a-f]+\.json$/)]);
      expect(await harness.registry.listVersions(model)).toEqual([]);
      expect(await harness.registry.getAliases(model)).toBeUndefined();
    },
  );
});
