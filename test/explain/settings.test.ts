import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.ts';
import { EXPLAIN_DEFAULTS, explainSettingsFromEnv } from '../../src/explain/index.ts';
import { matchRoute } from '../../src/serve/index.ts';

describe('explain settings', () => {
  it('are on with the documented defaults when nothing is set', () => {
    expect(explainSettingsFromEnv({})).toEqual(EXPLAIN_DEFAULTS);
  });

  it('read the switch and the caps from the environment', () => {
    expect(
      explainSettingsFromEnv({
        MAAS_EXPLAIN: 'OFF',
        MAAS_EXPLAIN_MAX_BUDGET: '64',
        MAAS_EXPLAIN_MAX_MS: '2000',
      }),
    ).toMatchObject({ enabled: false, maxBudget: 64, defaultBudget: 64, maxMs: 2000 });
  });

  it('refuse a switch that is neither on nor off, and a default budget over the cap', () => {
    expect(() => explainSettingsFromEnv({ MAAS_EXPLAIN: 'yes' })).toThrow(ConfigError);
    expect(() =>
      explainSettingsFromEnv({ MAAS_EXPLAIN_MAX_BUDGET: '100', MAAS_EXPLAIN_BUDGET: '200' }),
    ).toThrow(/MAAS_EXPLAIN_BUDGET="200" is not valid: set it to an integer from 2 to 100/);
  });
});

describe('explain routes', () => {
  it('match V2 with and without a version and V1 :explain, all POST', () => {
    expect(matchRoute('/v2/models/iris/explain')).toEqual({
      name: 'model.explain',
      method: 'POST',
      model: 'iris',
    });
    expect(matchRoute('/v2/models/iris/versions/3/explain')).toMatchObject({
      name: 'model.explain',
      version: 3,
    });
    expect(matchRoute('/v1/models/iris:explain')).toEqual({
      name: 'model.explain-v1',
      method: 'POST',
      model: 'iris',
    });
    expect(() => matchRoute('/v1/models/iris:explain:explain')).toThrow(/not a model name/);
  });
});
