import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/index.ts';
import {
  INGEST_DEFAULTS,
  ingestSettingsFromEnv,
  parseUploadOptions,
} from '../../src/ingest/index.ts';

describe('ingest settings and upload options', () => {
  it('defaults every setting', () => {
    expect(ingestSettingsFromEnv({})).toMatchObject({ ...INGEST_DEFAULTS });
  });

  it('reads the variables the stack sets', () => {
    const settings = ingestSettingsFromEnv({
      MAAS_CANARY_WEIGHT: '0.25',
      MAAS_BAKE_MINUTES: '5',
      MAAS_MAX_MODEL_BYTES: '1048576',
      MAAS_GATE_OBJECTIVE: 'size',
      MAAS_GATE_MIN_COSINE: '0.99',
    });
    expect(settings).toMatchObject({
      canaryWeight: 0.25,
      bakeMinutes: 5,
      maxModelBytes: 1048576,
      objective: 'size',
      minCosine: 0.99,
    });
  });

  it.each([
    [
      'MAAS_CANARY_WEIGHT',
      '2',
      /MAAS_CANARY_WEIGHT="2" is not valid: set it to a number from 0 to 1/,
    ],
    ['MAAS_GATE_MIN_COSINE', '0', /above 0 up to 1/],
    ['MAAS_GATE_OBJECTIVE', 'speed', /`latency` or `size`/],
    ['MAAS_MAX_SAMPLES', '1.5', /an integer from 1/],
  ])('refuses %s=%s naming the variable', (name, value, message) => {
    expect(() => ingestSettingsFromEnv({ [name]: value })).toThrow(ConfigError);
    expect(() => ingestSettingsFromEnv({ [name]: value })).toThrow(message);
  });

  it('reads per-upload options from metadata, with defaults', () => {
    expect(parseUploadOptions({})).toEqual({ quantize: true, promote: 'canary' });
    expect(
      parseUploadOptions({
        'maas-quantize': 'OFF',
        'maas-promote': 'now',
        'maas-canary-weight': '0',
      }),
    ).toEqual({ quantize: false, promote: 'now', canaryWeight: 0 });
  });
});
