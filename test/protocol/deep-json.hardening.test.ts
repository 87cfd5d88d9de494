import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/json/index.ts';
import {
  decodeInferRequest,
  decodeV1Request,
  InvalidRequestError,
} from '../../src/protocol/index.ts';

const SIGNATURE = {
  inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 4] }],
};
const LIMITS = { maxElements: 1_000_000 };
const DEPTH = 100_000;
const deepArray = '['.repeat(DEPTH) + ']'.repeat(DEPTH);
const deepObject = `${'{"a":'.repeat(DEPTH)}1${'}'.repeat(DEPTH)}`;
const X = '{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}';
const utf8 = new TextEncoder();

const v2Error = (body: string, header?: number): unknown => {
  try {
    decodeInferRequest(utf8.encode(body), header, SIGNATURE, LIMITS);
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('requests nested deeper than the cap', () => {
  it.each([
    ['request parameters', `{"inputs": [${X}], "parameters": ${deepObject}}`],
    ['input parameters', `{"inputs": [${X.slice(0, -1)}, "parameters": ${deepObject}}]}`],
    ['an unknown field', `{"inputs": [${X}], "extra": ${deepArray}}`],
    ['the data', `{"inputs": [{"name":"x","datatype":"FP32","shape":[1,4],"data":${deepArray}}]}`],
  ])('V2 JSON: %s → InvalidRequestError naming the depth cap', (_, body) => {
    const err = v2Error(body);
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect((err as Error).message).toContain(`more than ${MAX_JSON_DEPTH} levels deep`);
  });

  it('V2 binary: a deep JSON header is refused the same way', () => {
    const header = `{"inputs": [${X}], "parameters": ${deepObject}}`;
    const err = v2Error(header, utf8.encode(header).byteLength);
    expect(err).toBeInstanceOf(InvalidRequestError);
  });

  it('V1: deep instances are refused with the depth cap', () => {
    expect(() =>
      decodeV1Request(
        utf8.encode(`{"instances": [[1,2,3,4]], "x": ${deepArray}}`),
        SIGNATURE,
        '/v1/models/m:predict',
        LIMITS,
      ),
    ).toThrow(`more than ${MAX_JSON_DEPTH} levels deep`);
  });
});
