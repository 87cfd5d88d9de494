import { DEFAULTS } from '../config/index.ts';
import { MaasError } from '../errors/index.ts';
import { type HttpResponse, jsonResponse } from './http.ts';

type ErrorOptions = { cause?: unknown; details?: Record<string, unknown> };

/** The request as a whole is malformed: not JSON, missing `inputs`, a bad parameter. */
export class InvalidRequestError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('InvalidRequest', message, options);
  }
}

/** One input or requested output does not fit the model's signature; the message names it. */
export class InvalidTensorError extends MaasError {
  constructor(
    readonly kind: 'input' | 'output',
    readonly tensor: string,
    message: string,
    options: ErrorOptions = {},
  ) {
    const shown = tensor.length > 80 ? `${tensor.slice(0, 77)}...` : tensor;
    super('InvalidTensor', `${kind} ${JSON.stringify(shown)}: ${message}`, {
      ...options,
      details: { kind, tensor, ...options.details },
    });
  }
}

/** The inputs matched the signature but the model refused their values at run time. */
export class InputRejectedError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('InputRejected', message, options);
  }
}

export class UnsupportedMediaTypeError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('UnsupportedMediaType', message, options);
  }
}

/** The request body, its element count or the response it would produce is over a cap. */
export class PayloadTooLargeError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('PayloadTooLarge', message, options);
  }
}

export class MethodNotAllowedError extends MaasError {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly allowed: readonly string[],
  ) {
    super('MethodNotAllowed', `${method} is not allowed on ${path}; use ${allowed.join(' or ')}`, {
      details: { allowed },
    });
  }
}

/** Load and unload of the model repository extension: models are managed through S3 here. */
export class RepositoryReadOnlyError extends MaasError {
  constructor(action: 'load' | 'unload', model: string) {
    super(
      'RepositoryReadOnly',
      `the model repository is read-only over HTTP, so ${model} cannot be ${action}ed here: ` +
        (action === 'load'
          ? `upload the model to S3 instead (\`maas push model.onnx --model ${model}\`, or aws s3 cp to incoming/${model}/), and it is registered and served`
          : `take it out of service through S3 instead (\`maas rollback ${model}\`, or \`maas promote\` another version)`),
      { details: { action, model } },
    );
  }
}

export class RouteNotFoundError extends MaasError {
  constructor(
    readonly method: string,
    readonly path: string,
  ) {
    super(
      'RouteNotFound',
      `no route ${method} ${path}; the API serves /v2 (Open Inference Protocol V2: /v2/models, ` +
        '/v2/models/{model}/infer, ...) and /v1/models/{model}:predict',
    );
  }
}

/** Seconds a client should wait before retrying a 503 or a 429, unless the error says otherwise. */
export const RETRY_AFTER_SECONDS = {
  unavailable: DEFAULTS.retryAfterSeconds,
  overloaded: 1,
} as const;

interface ErrorRule {
  status: number;
  /** when set, the client sees this text instead of the error's own message */
  publicMessage?: (err: MaasError) => string;
  retryAfter?: number;
}

const retryAfterOf = (err: MaasError, fallback: number): number => {
  const value = err.details.retryAfterSeconds;
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : fallback;
};

const modelContext = (err: MaasError): string => {
  const { model, version } = err.details;
  if (typeof model !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(model)) return 'the model';
  return typeof version === 'number' && Number.isSafeInteger(version)
    ? `model ${model} version ${version}`
    : `model ${model}`;
};

const unavailable = (what: (err: MaasError) => string): ErrorRule => ({
  status: 503,
  retryAfter: RETRY_AFTER_SECONDS.unavailable,
  publicMessage: (err) =>
    `${what(err)}; retry after ${retryAfterOf(err, RETRY_AFTER_SECONDS.unavailable)} s`,
});

/**
 * Status by `MaasError.code`. Codes rather than classes, so errors raised by the registry and the
 * runtime map here without this module importing them. Storage-side messages can carry SDK
 * internals (endpoints, bucket names), so 503s show a fixed text instead.
 */
const RULES: Readonly<Partial<Record<string, ErrorRule>>> = {
  InvalidRequest: { status: 400 },
  InvalidTensor: { status: 400 },
  InputRejected: { status: 400 },
  InvalidModelName: { status: 400 },
  InvalidExplainParameter: { status: 400 },
  ExplanationTooCostly: { status: 413 },
  ExplainDisabled: { status: 404 },
  ModelNotFound: { status: 404 },
  VersionNotFound: { status: 404 },
  RouteNotFound: { status: 404 },
  MethodNotAllowed: { status: 405 },
  RepositoryReadOnly: { status: 405 },
  PayloadTooLarge: { status: 413 },
  UnsupportedMediaType: { status: 415 },
  Overloaded: { status: 429, retryAfter: RETRY_AFTER_SECONDS.overloaded },
  StorageUnavailable: unavailable(
    (err) => `model storage is unreachable while loading ${modelContext(err)}`,
  ),
  ObjectNotFound: unavailable((err) => `a stored object of ${modelContext(err)} is missing`),
  IntegrityError: unavailable(
    (err) =>
      `the stored bytes of ${modelContext(err)} failed their sha256 check and were not loaded`,
  ),
  ModelUnavailable: unavailable((err) => `${modelContext(err)} cannot be loaded right now`),
};

/** The rule of a code: own keys only, so a code like `constructor` is no rule but a 500. */
const ruleOf = (code: string): ErrorRule | undefined =>
  Object.hasOwn(RULES, code) ? RULES[code] : undefined;

/**
 * A generic load failure (`ModelUnavailable`) often wraps the specific one (storage unreachable, a
 * sha256 mismatch): the client is told the specific reason, without its internals.
 */
const specificRule = (err: MaasError): ErrorRule | undefined => {
  let cause: unknown = err.cause;
  for (let depth = 0; depth < 8 && cause instanceof Error; depth++) {
    if (
      cause instanceof MaasError &&
      cause.code !== err.code &&
      ruleOf(cause.code)?.status === 503
    ) {
      return ruleOf(cause.code);
    }
    cause = cause.cause;
  }
  return undefined;
};

/** The HTTP status an error maps to: the one place errors become HTTP. */
export const statusOf = (err: unknown): number =>
  err instanceof MaasError ? (ruleOf(err.code)?.status ?? 500) : 500;

/**
 * Maps any error to a JSON `{"error": "..."}` response. Client errors show their message (it
 * says what to send instead); anything unrecognised becomes a generic 500 that names only the
 * request id, so internals never reach the client.
 */
export const toHttpResponse = (err: unknown, requestId?: string): HttpResponse => {
  const rule = err instanceof MaasError ? ruleOf(err.code) : undefined;
  if (!(err instanceof MaasError) || rule === undefined) {
    const ref = requestId ? ` (request id ${requestId})` : '';
    return jsonResponse(500, { error: `internal error${ref}; the operators have the details` });
  }
  const headers: Record<string, string> = {};
  if (rule.retryAfter !== undefined) {
    headers['retry-after'] = String(retryAfterOf(err, rule.retryAfter));
  }
  if (err instanceof MethodNotAllowedError) headers.allow = err.allowed.join(', ');
  const shown = (rule.status === 503 && specificRule(err)) || rule;
  const message = shown.publicMessage ? shown.publicMessage(err) : err.message;
  return jsonResponse(rule.status, { error: message }, headers);
};
