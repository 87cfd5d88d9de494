import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
import { BINARY_CONTENT_TYPE, type HttpRequest, JSON_CONTENT_TYPE } from './http.ts';
import type { ProtocolLimits } from './limits.ts';

const mediaType = (request: HttpRequest): string =>
  (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

export const requireBody = (request: HttpRequest): Uint8Array => {
  if (request.body === undefined || request.body.byteLength === 0) {
    throw new InvalidRequestError('the request has no body; POST a JSON inference request');
  }
  return request.body;
};

/** The body cap, checked before anything is parsed. */
export const checkBodySize = (request: HttpRequest, limits: ProtocolLimits): void => {
  if ((request.body?.byteLength ?? 0) > limits.maxBodyBytes) {
    throw new PayloadTooLargeError(
      `the request body is ${request.body?.byteLength} bytes, over the cap of ` +
        `${limits.maxBodyBytes}; send smaller batches (binary tensor data is ~3x smaller than JSON)`,
    );
  }
};

/** Accepts JSON, or the binary extension's octet-stream; anything else is a 415. */
export const checkInferMediaType = (
  request: HttpRequest,
  binary: boolean,
  allowBinary: boolean,
): void => {
  const type = mediaType(request);
  const json = type === '' || type === JSON_CONTENT_TYPE;
  if (json || (binary && type === BINARY_CONTENT_TYPE)) return;
  if (type === BINARY_CONTENT_TYPE && allowBinary) {
    throw new InvalidRequestError(
      `${BINARY_CONTENT_TYPE} bodies need the Inference-Header-Content-Length header: the byte ` +
        'length of the JSON that starts the body (binary tensor data extension)',
    );
  }
  throw new UnsupportedMediaTypeError(
    `Content-Type ${type} is not supported; send ${JSON_CONTENT_TYPE}` +
      (allowBinary
        ? `, or ${BINARY_CONTENT_TYPE} with Inference-Header-Content-Length for binary tensor data`
        : ''),
  );
};

/** Response wire size: API Gateway carries binary bodies base64-encoded inside Lambda's response. */
const wireBytes = (body: string | Uint8Array): number =>
  typeof body === 'string' ? Buffer.byteLength(body) : Math.ceil(body.byteLength / 3) * 4;

export const checkResponseSize = (body: string | Uint8Array, limits: ProtocolLimits): void => {
  const bytes = wireBytes(body);
  if (bytes > limits.maxResponseBytes) {
    throw new PayloadTooLargeError(
      `the response would be ${bytes} bytes, over the cap of ${limits.maxResponseBytes}; ` +
        'ask for fewer outputs ("outputs"), binary outputs, or send a smaller batch',
    );
  }
};

export const inferPath = (model: string, version?: number): string =>
  version === undefined
    ? `/v2/models/${model}/infer`
    : `/v2/models/${model}/versions/${version}/infer`;
