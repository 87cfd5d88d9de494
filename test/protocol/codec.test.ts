import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  halfToNumber,
  limitsFromEnv,
  toHttpResponse,
} from '../../src/protocol/index.ts';
import { matchRoute } from '../../src/serve/index.ts';

describe('halfToNumber', () => {
  it('decodes normals, subnormals, zeros, infinities and NaN exactly', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x0000, 0],
      [0x8000, -0],
      [0x7c00, Number.POSITIVE_INFINITY],
      [0xfc00, Number.NEGATIVE_INFINITY],
      [0x7e00, Number.NaN],
    ];
    for (const [bits, value] of cases) expect(halfToNumber(bits), bits.toString(16)).toBe(value);
  });
});

describe('limitsFromEnv', () => {
  it('uses the defaults and reads overrides', () => {
    expect(limitsFromEnv({})).toEqual(DEFAULT_LIMITS);
    expect(limitsFromEnv({ MAAS_MAX_BODY_BYTES: '1024', MAAS_MAX_ELEMENTS: ' ' })).toEqual({
      ...DEFAULT_LIMITS,
      maxBodyBytes: 1024,
    });
  });

  it('names the variable that is not a positive integer', () => {
    expect(() => limitsFromEnv({ MAAS_MAX_ELEMENTS: '1e3x' })).toThrow(
      'MAAS_MAX_ELEMENTS="1e3x" is not valid: set it to an integer from 1',
    );
    expect(() => limitsFromEnv({ MAAS_MAX_RESPONSE_BYTES: '0' })).toThrow(
      'MAAS_MAX_RESPONSE_BYTES',
    );
  });
});

describe('matchRoute', () => {
  it('matches every route of the contract', () => {
    expect(matchRoute('/v2/models/iris.v2_x-1/versions/12/infer')).toEqual({
      name: 'model.infer',
      method: 'POST',
      model: 'iris.v2_x-1',
      version: 12,
    });
    expect(matchRoute('/v1/models/iris:predict')).toEqual({
      name: 'model.predict',
      method: 'POST',
      model: 'iris',
    });
    expect(matchRoute('/v2/models/iris/ready')).toMatchObject({
      name: 'model.ready',
      model: 'iris',
    });
    expect(matchRoute('/v2/health/ready/')).toEqual({ name: 'health.ready', method: 'GET' });
  });

  it('decodes percent-encoded segments and rejects malformed ones', () => {
    expect(matchRoute('/v2/models/ir%69s')).toMatchObject({ model: 'iris' });
    expect(matchRoute('/v2/models/%E0%A4%A')).toBeUndefined();
    expect(matchRoute('v2/models')).toBeUndefined();
  });
});

describe('toHttpResponse', () => {
  it('never shows the message of an error it does not know', () => {
    const res = toHttpResponse(new Error('password=hunter2'));
    expect(res.status).toBe(500);
    expect(res.body).not.toContain('hunter2');
  });
});
