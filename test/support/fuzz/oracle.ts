import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HttpResponse } from '../../../src/protocol/index.ts';

/**
 * What every answer to a client must satisfy, whatever the client sent: a status below 500, and
 * for a refusal a JSON body `{"error": "<non-empty message>"}`; a success is well-formed too (JSON
 * that parses, or a binary body whose JSON header length and binary sizes add up). Returns the
 * violations, empty when the answer is fine, so a benchmark can count them and a test can fail.
 */
export const violations = (
  res: HttpResponse,
  options: {
    /** storage is being failed on purpose: a 503 with Retry-After is the right answer then */
    storageDown?: boolean;
  } = {},
): string[] => {
  const found: string[] = [];
  if (!Number.isInteger(res.status) || res.status < 200 || res.status > 599) {
    found.push(`status ${res.status} is not an HTTP status`);
  }
  if (res.status >= 500 && !(options.storageDown && res.status === 503)) {
    found.push(`status ${res.status}: a client caused a server error`);
  }
  const type = res.headers['content-type'];
  const bytes = typeof res.body === 'string' ? Buffer.from(res.body, 'utf8') : res.body;
  const leak = runtimeInternals(bytes);
  if (leak !== undefined) found.push(`the body shows the runtime's internals: ${leak}`);
  if (res.status >= 400) {
    if (type !== 'application/json') found.push(`error with content-type ${type}`);
    const parsed = parseJson(bytes);
    const error = isObject(parsed) ? parsed.error : undefined;
    if (typeof error !== 'string' || error.trim() === '') {
      found.push(`error body is not {"error": "<message>"}: ${preview(bytes)}`);
    }
    if (
      (res.status === 429 || res.status === 503) &&
      !/^[1-9][0-9]*$/.test(res.headers['retry-after'] ?? '')
    ) {
      found.push(`${res.status} without a Retry-After in seconds`);
    }
    if (res.status === 405 && !res.headers.allow) found.push('405 without an Allow header');
    return found;
  }
  if (type === 'application/json') {
    if (parseJson(bytes) === undefined)
      found.push(`JSON success that does not parse: ${preview(bytes)}`);
    return found;
  }
  if (type === 'application/octet-stream') found.push(...binaryViolations(res, bytes));
  else found.push(`success with content-type ${type}`);
  return found;
};

/**
 * onnxruntime's own words in an answer: a path of its sources (`/onnxruntime_src/...`, a
 * `file.h:563`), a kernel or node it names. They belong in the log, never in a client's answer.
 */
export const RUNTIME_INTERNALS =
  /onnxruntime_src|\/onnxruntime\/(core|contrib_ops)\/|[\w/-]+\.(?:h|cc|cpp|cu):\d+|BroadcastIterator|\[ONNXRuntimeError\]|Non-zero status code returned while running/;

const runtimeInternals = (bytes: Uint8Array): string | undefined => {
  // an answer is checked whatever it holds: binary outputs decode as text harmlessly
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return RUNTIME_INTERNALS.exec(text)?.[0];
};

const binaryViolations = (res: HttpResponse, bytes: Uint8Array): string[] => {
  const length = Number(res.headers['inference-header-content-length']);
  if (!Number.isSafeInteger(length) || length <= 0 || length > bytes.byteLength) {
    return [`binary response with Inference-Header-Content-Length ${length}`];
  }
  const header = parseJson(bytes.subarray(0, length));
  const outputs = isObject(header) && Array.isArray(header.outputs) ? header.outputs : undefined;
  if (outputs === undefined) return ['binary response whose JSON header has no outputs'];
  let declared = 0;
  for (const output of outputs) {
    const size =
      isObject(output) && isObject(output.parameters) ? output.parameters.binary_data_size : 0;
    declared += typeof size === 'number' ? size : 0;
  }
  return declared === bytes.byteLength - length
    ? []
    : [`binary outputs declare ${declared} bytes but ${bytes.byteLength - length} follow`];
};

/** The same, for what the Lambda handler returns to API Gateway (the body decoded first). */
export const eventViolations = (result: unknown): string[] => {
  if (!isObject(result)) return [`the handler returned ${typeof result}, not a result object`];
  const r = result as APIGatewayProxyStructuredResultV2;
  if (typeof r.statusCode !== 'number') return ['the result has no statusCode'];
  if (typeof r.body !== 'string') return ['the result body is not a string'];
  const headers = Object.fromEntries(
    Object.entries(r.headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]),
  );
  const body = r.isBase64Encoded ? new Uint8Array(Buffer.from(r.body, 'base64')) : r.body;
  return violations({ status: r.statusCode, headers, body });
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

const parseJson = (bytes: Uint8Array): unknown => {
  try {
    return JSON.parse(strictUtf8.decode(bytes));
  } catch {
    return undefined;
  }
};

const preview = (bytes: Uint8Array): string =>
  JSON.stringify(Buffer.from(bytes.subarray(0, 200)).toString('utf8'));
