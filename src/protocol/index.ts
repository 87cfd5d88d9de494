export { CONTENT_ENCODINGS, decodeContentEncoding } from './encoding.ts';
export {
  InputRejectedError,
  InvalidRequestError,
  InvalidTensorError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RETRY_AFTER_SECONDS,
  RepositoryReadOnlyError,
  RouteNotFoundError,
  statusOf,
  toHttpResponse,
  UnsupportedMediaTypeError,
} from './errors.ts';
export {
  BINARY_CONTENT_TYPE,
  type HttpRequest,
  type HttpResponse,
  INFERENCE_HEADER_LENGTH,
  JSON_CONTENT_TYPE,
  jsonResponse,
} from './http.ts';
export {
  DEFAULT_LIMITS,
  type DecodeLimits,
  LIMIT_ENV,
  limitsFromEnv,
  type ModelInputLimit,
  type ProtocolLimits,
} from './limits.ts';
export {
  checkBodySize,
  checkInferMediaType,
  checkResponseSize,
  inferPath,
  requireBody,
} from './media.ts';
export {
  CONFIG_PLATFORM,
  decodeRepositoryIndexRequest,
  encodeModelConfig,
  type RepositoryIndexEntry,
  type TritonModelConfig,
} from './repository.ts';
export {
  countNonFinite,
  type DecodedTensor,
  halfToNumber,
  type NumericData,
  type TensorData,
} from './tensors.ts';
export { decodeV1Request, encodeV1Response } from './v1.ts';
export {
  type DecodedInferRequest,
  decodeInferRequest,
  encodeInferResponse,
  parseHeaderLength,
  type RequestedOutput,
  type Signature,
} from './v2.ts';
