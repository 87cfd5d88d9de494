import fc from 'fast-check';
import { expect, it } from 'vitest';
import { MaasError } from '../../src/errors/index.ts';
import { MethodNotAllowedError, statusOf, toHttpResponse } from '../../src/protocol/index.ts';
import { hostileText } from '../support/fuzz/arbitraries.ts';
import { violations } from '../support/fuzz/oracle.ts';

/** The codes the protocol maps, and what they must become. */
const CLIENT_CODES = [
  'InvalidRequest',
  'InvalidTensor',
  'InputRejected',
  'InvalidModelName',
  'ModelNotFound',
  'VersionNotFound',
  'RouteNotFound',
  'MethodNotAllowed',
  'PayloadTooLarge',
  'UnsupportedMediaType',
  'Overloaded',
];
const UNAVAILABLE_CODES = [
  'StorageUnavailable',
  'ObjectNotFound',
  'IntegrityError',
  'ModelUnavailable',
  'CorruptRecord',
];

const anyValue = fc.oneof(
  hostileText,
  fc.double(),
  fc.integer(),
  fc.constantFrom(undefined, null, -1, 0, 1.5, 3601, 2 ** 53, Number.NaN, '5', [], {}),
);

/** Errors as the core raises them, with whatever their details and causes hold. */
const thrown: fc.Arbitrary<unknown> = fc.letrec<{ error: unknown }>((tie) => ({
  error: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc
      .record({
        code: fc.oneof(
          // MethodNotAllowed comes only from its class, which carries the Allow list (below)
          fc.constantFrom(
            ...CLIENT_CODES.filter((c) => c !== 'MethodNotAllowed'),
            ...UNAVAILABLE_CODES,
            'ModelLoadFailed',
          ),
          hostileText,
        ),
        // the core's errors always say something: an empty message is not one it raises
        message: hostileText.filter((m) => m.trim() !== ''),
        details: fc.record(
          { model: anyValue, version: anyValue, variant: anyValue, retryAfterSeconds: anyValue },
          { requiredKeys: [] },
        ),
        cause: fc.option(tie('error'), { nil: undefined }),
        cyclic: fc.boolean(),
      })
      .map(({ code, message, details, cause, cyclic }) => {
        const err = new MaasError(code, message, { cause, details });
        if (cyclic) Object.defineProperty(err, 'cause', { value: err });
        return err;
      }),
    fc
      .tuple(hostileText, hostileText)
      .map(([method, path]) => new MethodNotAllowedError(method, path, ['POST'])),
    hostileText.map((m) => new Error(m)),
    anyValue,
  ),
})).error;

it('maps any error to a JSON error, client codes below 500, internals never shown on a 503', () => {
  fc.assert(
    fc.property(thrown, hostileText, (err, requestId) => {
      const res = toHttpResponse(err, requestId);
      const code = err instanceof MaasError ? err.code : undefined;
      const known = code !== undefined && [...CLIENT_CODES, ...UNAVAILABLE_CODES].includes(code);
      expect(res.status).toBe(statusOf(err));
      const found = violations(res, { storageDown: true }).filter((v) => !v.includes('status 500'));
      expect(found, JSON.stringify(found)).toEqual([]);
      if (code !== undefined && CLIENT_CODES.includes(code)) expect(res.status).toBeLessThan(500);
      if (code !== undefined && UNAVAILABLE_CODES.includes(code)) {
        expect(res.status).toBe(503);
        if (err instanceof MaasError && err.message.length > 12) {
          expect(JSON.parse(res.body as string).error).not.toContain(err.message);
        }
      }
      if (!known) expect(res.status).toBe(500);
    }),
    { numRuns: 300 },
  );
});

it('writes Retry-After as whole seconds even when an error carries an unusable value', () => {
  // 1e21 is an integer to JavaScript but prints as "1e+21", which no client parses as seconds
  for (const retryAfterSeconds of [1e21, Number.MAX_VALUE, 2 ** 53 + 2, 0, -3, 2.5]) {
    const res = toHttpResponse(
      new MaasError('StorageUnavailable', 'store down', { details: { retryAfterSeconds } }),
    );
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  }
});

it('maps a code that names an inherited property (constructor, toString, __proto__) to a 500', () => {
  // found by the property above: RULES['constructor'] is Object, whose status is undefined
  for (const code of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
    const err = new MaasError(code, 'odd');
    expect(statusOf(err)).toBe(500);
    const res = toHttpResponse(err, 'r1');
    expect(res.status).toBe(500);
    expect(JSON.parse(res.body as string)).toEqual({
      error: 'internal error (request id r1); the operators have the details',
    });
  }
});
