import { MAX_JSON_DEPTH, nestsTooDeep } from '../json/index.ts';
import type { TensorSpec } from '../onnx/index.ts';
import { InvalidRequestError, InvalidTensorError, PayloadTooLargeError } from './errors.ts';
import { BINARY_CONTENT_TYPE, INFERENCE_HEADER_LENGTH, JSON_CONTENT_TYPE } from './http.ts';
import { checkModelLimit, type DecodeLimits } from './limits.ts';
import {
  checkShape,
  type DecodedTensor,
  dataJson,
  flattenData,
  fromBinary,
  fromJsonValues,
  preview,
  toBinary,
} from './tensors.ts';

export interface Signature {
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

export interface RequestedOutput {
  name: string;
  binary: boolean;
}

export interface DecodedInferRequest {
  id?: string;
  inputs: DecodedTensor[];
  /** the outputs to compute, in response order: those named in the request, else all */
  outputs: RequestedOutput[];
  /** the request's own `parameters`, as sent (explain reads its options there) */
  parameters: Readonly<Record<string, unknown>>;
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const REQUEST_SHAPE =
  'send {"inputs": [{"name": ..., "shape": [...], "datatype": ..., "data": [...]}]}';

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON document from bytes; every failure is the client's, and says so. */
export const parseJsonBody = (bytes: Uint8Array, what: string, expected: string): unknown => {
  let text: string;
  try {
    text = utf8Strict.decode(bytes);
  } catch (cause) {
    throw new InvalidRequestError(`${what} is not valid UTF-8; ${expected}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const reason = cause instanceof SyntaxError ? ` (${cause.message})` : '';
    throw new InvalidRequestError(`${what} is not valid JSON${reason}; ${expected}`, { cause });
  }
  if (nestsTooDeep(value)) {
    throw new InvalidRequestError(
      `${what} nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep; ${expected}, ` +
        "with data nested no deeper than the tensor's rank (or flat)",
    );
  }
  return value;
};

const optionalObject = (value: unknown, what: string): JsonObject => {
  if (value === undefined) return {};
  if (!isObject(value))
    throw new InvalidRequestError(`${what} must be an object, got ${preview(value)}`);
  return value;
};

const optionalBoolean = (value: unknown, what: string): boolean | undefined => {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidRequestError(`${what} must be true or false, got ${preview(value)}`);
};

/** The value of `Inference-Header-Content-Length`, or `undefined` for a plain JSON request. */
export const parseHeaderLength = (
  raw: string | undefined,
  bodyLength: number,
): number | undefined => {
  if (raw === undefined) return undefined;
  const length = /^\s*[0-9]{1,15}\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(length) || length <= 0 || length > bodyLength) {
    throw new InvalidRequestError(
      `Inference-Header-Content-Length is "${raw}" but the body has ${bodyLength} bytes; it must ` +
        'be the byte length of the JSON part that starts the body, binary tensor data following it',
    );
  }
  return length;
};

interface InputPlan {
  spec: TensorSpec;
  shape: number[];
  count: number;
  binarySize?: number;
  data: unknown;
}

/**
 * Decodes an Open Inference Protocol V2 infer request, JSON or with the binary tensor data
 * extension, against the model's signature. Everything cheap is checked first (names, datatypes,
 * shapes, the element cap, binary lengths) so nothing large is allocated for a request that will
 * be refused.
 */
export const decodeInferRequest = (
  body: Uint8Array,
  headerLength: number | undefined,
  signature: Signature,
  limits: DecodeLimits,
): DecodedInferRequest => {
  const header = parseJsonBody(
    headerLength === undefined ? body : body.subarray(0, headerLength),
    headerLength === undefined ? 'the request body' : 'the JSON header of the request',
    REQUEST_SHAPE,
  );
  const binary = headerLength === undefined ? body.subarray(0, 0) : body.subarray(headerLength);
  if (!isObject(header)) {
    throw new InvalidRequestError(`the request must be a JSON object; ${REQUEST_SHAPE}`);
  }
  const { id, inputs, outputs } = header;
  if (id !== undefined && typeof id !== 'string') {
    throw new InvalidRequestError(`"id" must be a string, got ${preview(id)}`);
  }
  const parameters = optionalObject(header.parameters, '"parameters"');
  const binaryByDefault =
    optionalBoolean(parameters.binary_data_output, 'parameters.binary_data_output') ?? false;

  const plans = planInputs(inputs, signature.inputs, headerLength !== undefined, limits);
  const declared = plans.reduce((sum, p) => sum + (p.binarySize ?? 0), 0);
  if (declared !== binary.byteLength) {
    throw new InvalidRequestError(
      `the inputs declare ${declared} bytes of binary data (parameters.binary_data_size) but ` +
        `${binary.byteLength} bytes follow the ${headerLength ?? 0}-byte JSON header; ` +
        'Inference-Header-Content-Length and every binary_data_size must be exact',
    );
  }

  let offset = 0;
  const decoded = plans.map(({ spec, shape, count, binarySize, data }): DecodedTensor => {
    if (binarySize === undefined) {
      const values = flattenData(spec.name, data, shape, count);
      return {
        name: spec.name,
        datatype: spec.datatype,
        shape,
        data: fromJsonValues(spec.name, spec.datatype, values),
      };
    }
    const slice = binary.subarray(offset, offset + binarySize);
    offset += binarySize;
    return {
      name: spec.name,
      datatype: spec.datatype,
      shape,
      data: fromBinary(spec.name, spec.datatype, slice, count, shape),
    };
  });

  const requested = planOutputs(outputs, signature.outputs, binaryByDefault);
  return { ...(id === undefined ? {} : { id }), inputs: decoded, outputs: requested, parameters };
};

const planInputs = (
  inputs: unknown,
  specs: readonly TensorSpec[],
  binaryAllowed: boolean,
  limits: DecodeLimits,
): InputPlan[] => {
  const expected = specs.map((s) => s.name).join(', ');
  if (!Array.isArray(inputs) || inputs.length === 0) {
    throw new InvalidRequestError(
      `"inputs" must be a non-empty array; this model takes ${specs.length} input(s): ${expected}`,
    );
  }
  const seen = new Set<string>();
  let total = 0;
  const plans = inputs.map((input, i): InputPlan => {
    if (!isObject(input) || typeof input.name !== 'string') {
      throw new InvalidRequestError(
        `inputs[${i}] must be an object with a string "name"; ${REQUEST_SHAPE}`,
      );
    }
    const spec = specs.find((s) => s.name === input.name);
    if (spec === undefined) {
      throw new InvalidTensorError(
        'input',
        input.name,
        `the model has no input of this name; its inputs are: ${expected}`,
      );
    }
    if (seen.has(spec.name)) {
      throw new InvalidTensorError('input', spec.name, 'appears more than once in "inputs"');
    }
    seen.add(spec.name);
    if (input.datatype !== spec.datatype) {
      throw new InvalidTensorError(
        'input',
        spec.name,
        `datatype is ${preview(input.datatype)} but the model takes ${spec.datatype}; send "datatype": "${spec.datatype}"`,
      );
    }
    const count = checkShape(spec, input.shape, limits.maxElements);
    total += count;
    if (total > limits.maxElements) {
      throw new PayloadTooLargeError(
        `the inputs hold more than ${limits.maxElements} elements in total, the cap per request; send smaller batches`,
      );
    }
    const params = optionalObject(input.parameters, `inputs[${i}].parameters`);
    const shape = input.shape as number[];
    const size = params.binary_data_size;
    if (size === undefined) {
      if (input.data === undefined) {
        throw new InvalidTensorError(
          'input',
          spec.name,
          'has no "data" (and no parameters.binary_data_size for binary data)',
        );
      }
      return { spec, shape, count, data: input.data };
    }
    if (!binaryAllowed) {
      throw new InvalidTensorError(
        'input',
        spec.name,
        'has parameters.binary_data_size but the request has no Inference-Header-Content-Length header',
      );
    }
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new InvalidTensorError(
        'input',
        spec.name,
        `parameters.binary_data_size must be a non-negative integer, got ${preview(size)}`,
      );
    }
    if (input.data !== undefined) {
      throw new InvalidTensorError(
        'input',
        spec.name,
        'has both "data" and parameters.binary_data_size; send one or the other',
      );
    }
    return { spec, shape, count, binarySize: size, data: undefined };
  });
  const missing = specs.filter((s) => !seen.has(s.name)).map((s) => s.name);
  if (missing.length > 0) {
    throw new InvalidRequestError(
      `missing input(s): ${missing.join(', ')}; this model takes ${specs.length}: ${expected}`,
    );
  }
  checkModelLimit(
    limits.model,
    total,
    plans.map((p) => ({ name: p.spec.name, shape: p.shape })),
  );
  return plans;
};

const planOutputs = (
  outputs: unknown,
  specs: readonly TensorSpec[],
  binaryByDefault: boolean,
): RequestedOutput[] => {
  if (outputs === undefined || (Array.isArray(outputs) && outputs.length === 0)) {
    return specs.map((s) => ({ name: s.name, binary: binaryByDefault }));
  }
  const names = specs.map((s) => s.name).join(', ');
  if (!Array.isArray(outputs)) {
    throw new InvalidRequestError(
      `"outputs" must be an array of {"name": ...}; the model's outputs are: ${names}`,
    );
  }
  const seen = new Set<string>();
  return outputs.map((output, i): RequestedOutput => {
    if (!isObject(output) || typeof output.name !== 'string') {
      throw new InvalidRequestError(`outputs[${i}] must be an object with a string "name"`);
    }
    const { name } = output;
    if (!specs.some((s) => s.name === name)) {
      throw new InvalidTensorError(
        'output',
        name,
        `the model has no output of this name; its outputs are: ${names}`,
      );
    }
    if (seen.has(name)) throw new InvalidTensorError('output', name, 'is requested more than once');
    seen.add(name);
    const params = optionalObject(output.parameters, `outputs[${i}].parameters`);
    const binary = optionalBoolean(params.binary_data, `outputs[${i}].parameters.binary_data`);
    return { name, binary: binary ?? binaryByDefault };
  });
};

export interface EncodedResponse {
  headers: Record<string, string>;
  body: string | Uint8Array;
}

const utf8 = new TextEncoder();

/**
 * Encodes a V2 infer response. With no binary output it is plain JSON; otherwise the JSON header
 * comes first (its length in `Inference-Header-Content-Length`) and the binary outputs follow in
 * header order.
 */
export const encodeInferResponse = (response: {
  modelName: string;
  modelVersion: number;
  id?: string;
  outputs: { tensor: DecodedTensor; binary: boolean }[];
}): EncodedResponse => {
  const chunks: Uint8Array[] = [];
  const outputs = response.outputs.map(({ tensor, binary }) => {
    const head = `{"name":${JSON.stringify(tensor.name)},"datatype":"${tensor.datatype}","shape":[${tensor.shape.join(',')}]`;
    if (!binary) return `${head},"data":${dataJson(tensor)}}`;
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    return `${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`;
  });
  const id = response.id === undefined ? '' : `,"id":${JSON.stringify(response.id)}`;
  const json =
    `{"model_name":${JSON.stringify(response.modelName)},` +
    `"model_version":"${response.modelVersion}"${id},"outputs":[${outputs.join(',')}]}`;
  if (chunks.length === 0) return { headers: { 'content-type': JSON_CONTENT_TYPE }, body: json };
  const header = utf8.encode(json);
  const body = new Uint8Array(chunks.reduce((sum, c) => sum + c.byteLength, header.byteLength));
  body.set(header, 0);
  let at = header.byteLength;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return {
    headers: {
      'content-type': BINARY_CONTENT_TYPE,
      [INFERENCE_HEADER_LENGTH]: String(header.byteLength),
    },
    body,
  };
};
