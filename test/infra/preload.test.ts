import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { readSettings, SettingsError } from '../../infra/settings.ts';
import { synthesize } from './synth.ts';

const problemsOf = (context: Record<string, unknown>): readonly string[] => {
  try {
    readSettings((key) => context[key], Object.keys(context));
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  return [];
};

describe('maas:predictPreloadModels', () => {
  const synth = synthesize({
    'maas:predictProvisionedConcurrency': 1,
    'maas:predictPreloadModels': ['encoder', 'iris'],
  });
  afterAll(() => synth.dispose());

  it('hands the list to predict, whose provisioned instances load the models during init', () => {
    synth.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'maas-predict',
          MAAS_PRELOAD_MODELS: 'encoder,iris',
        }),
      },
    });
  });

  it('refuses a list without provisioned instances, and names that are not model names', () => {
    expect(problemsOf({ 'maas:predictPreloadModels': 'iris' })).toEqual([
      expect.stringMatching(
        /predictProvisionedConcurrency is 0: models are preloaded only by provisioned instances/,
      ),
    ]);
    expect(
      problemsOf({ 'maas:predictProvisionedConcurrency': 1, 'maas:predictPreloadModels': 'Iris!' }),
    ).toEqual([expect.stringMatching(/names "Iris!", which is not a model name/)]);
  });

  it('sets nothing by default', () => {
    const plain = synthesize();
    try {
      const fns = plain.template.findResources('AWS::Lambda::Function');
      for (const fn of Object.values(fns) as {
        Properties: { Environment?: { Variables?: Record<string, unknown> } };
      }[]) {
        expect(fn.Properties.Environment?.Variables?.MAAS_PRELOAD_MODELS).toBeUndefined();
      }
    } finally {
      plain.dispose();
    }
  });
});

describe('maas:ingestMaxModelMb', () => {
  it('refuses an upload cap the ingest memory cannot hold, with the memory it needs', () => {
    // 200 MB + 1.5 × 2,048 MB; 3,008 MB holds (3,008 − 200) ÷ 1.5 = 1,872 MB
    const [problem] = problemsOf({ 'maas:ingestMaxModelMb': 2048 });
    expect(problem).toMatch(
      /ingestMaxModelMb=2048 needs an ingest function of 3272 MB .* raise maas:ingestMemoryMb to 3272 or more .* or lower maas:ingestMaxModelMb to 1872/,
    );
    expect(problemsOf({ 'maas:ingestMaxModelMb': 2048, 'maas:ingestMemoryMb': 3272 })).toEqual([]);
    expect(problemsOf({ 'maas:ingestMaxModelMb': 1024 })).toEqual([]);
  });

  it('gives ingest its cap in bytes, the allocator setting it was measured with, and /tmp for its work dir', () => {
    const synth = synthesize({ 'maas:ingestMaxModelMb': 200 });
    try {
      synth.template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({
            POWERTOOLS_SERVICE_NAME: 'maas-ingest',
            MAAS_MAX_MODEL_BYTES: String(200 * 1024 * 1024),
            MALLOC_MMAP_THRESHOLD_: '131072',
            MALLOC_ARENA_MAX: '1',
          }),
        },
        // the upload, its calibration copy, two int8 variants and a pre-optimized graph: 3.5 × 200 + 64
        EphemeralStorage: { Size: 764 },
      });
    } finally {
      synth.dispose();
    }
  });
});

describe('Node options', () => {
  it('give ingest a small V8 young generation and the old space the bootstrap would have, and predict none', () => {
    const synth = synthesize({ 'maas:ingestMemoryMb': 4096 });
    try {
      const fns = Object.values(synth.template.findResources('AWS::Lambda::Function')) as {
        Properties: { Environment?: { Variables?: Record<string, unknown> } };
      }[];
      const options = new Map(
        fns.map((fn) => {
          const vars = fn.Properties.Environment?.Variables ?? {};
          return [vars.POWERTOOLS_SERVICE_NAME, vars.NODE_OPTIONS];
        }),
      );
      expect(options.get('maas-ingest')).toBe(
        '--enable-source-maps --max-semi-space-size=2 --max-old-space-size=3686',
      );
      // predict's cold start parses no source map (infra/maas-function.ts SOURCE_MAPS_NODE_OPTIONS)
      expect(options.get('maas-predict')).toBeUndefined();
      expect(options.get('maas-rollback')).toBe('--enable-source-maps');
    } finally {
      synth.dispose();
    }
  });
});
