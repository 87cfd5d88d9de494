import { MaasError } from '../errors/index.ts';
import type { RouteVariant } from './provider.ts';

/**
 * A model cannot be loaded right now (its storage is unreachable, or its bytes failed
 * verification): HTTP 503 with `Retry-After: retryAfterSeconds`. Models already loaded keep serving.
 */
export class ModelUnavailableError extends MaasError {
  readonly retryAfterSeconds: number;
  private readonly reason: string;

  constructor(
    model: string,
    version: number | undefined,
    reason: string,
    options: {
      cause?: unknown;
      retryAfterSeconds: number;
      details?: Record<string, unknown>;
      /** @default 'ModelUnavailable' */
      code?: string;
    },
  ) {
    const what = version === undefined ? `model ${model}` : `model ${model} version ${version}`;
    super(
      options.code ?? 'ModelUnavailable',
      `${what} cannot be loaded right now: ${reason}; retry in ${options.retryAfterSeconds} s`,
      {
        cause: options.cause,
        details: {
          ...options.details,
          model,
          version,
          retryAfterSeconds: options.retryAfterSeconds,
        },
      },
    );
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.reason = reason;
  }

  /**
   * The same failure attributed to the route that asked for the version, so a candidate that
   * cannot load counts against the candidate's metrics (and its alarm can roll it back).
   */
  routed(variant: RouteVariant): ModelUnavailableError {
    const { model, version } = this.details;
    return new ModelUnavailableError(
      typeof model === 'string' ? model : '',
      typeof version === 'number' ? version : undefined,
      this.reason,
      {
        cause: this.cause,
        retryAfterSeconds: this.retryAfterSeconds,
        details: { ...this.details, variant },
        code: this.code,
      },
    );
  }
}

/**
 * The bytes read for a model variant do not hash to the sha256 its manifest records: no session is
 * created from them. A 503 like any other load failure: the client's request was fine.
 */
export class ModelIntegrityError extends ModelUnavailableError {
  constructor(
    model: string,
    version: number,
    facts: {
      key: string;
      expected: string;
      actual: string;
      /** set when the object's size differs from the manifest's (its first bytes may still match) */
      bytes?: { expected: number; actual: number };
      retryAfterSeconds: number;
    },
  ) {
    const { key, expected, actual, bytes } = facts;
    super(
      model,
      version,
      bytes === undefined
        ? `${key} has sha256 ${actual} but its manifest records ${expected}`
        : `${key} is ${bytes.actual} bytes but its manifest records ${bytes.expected}`,
      {
        retryAfterSeconds: facts.retryAfterSeconds,
        code: 'IntegrityError',
        details: {
          key,
          expected,
          actual,
          ...(bytes === undefined
            ? {}
            : { expectedBytes: bytes.expected, actualBytes: bytes.actual }),
        },
      },
    );
  }
}

/**
 * The model exists but `aliases.json` names no production version for an unpinned request. Its
 * code is `ModelNotFound` (404): under that name, without a version, there is nothing to serve.
 */
export class NoProductionVersionError extends MaasError {
  constructor(model: string, versions: readonly number[]) {
    super(
      'ModelNotFound',
      `model ${model} has no production version to serve; send the request to ` +
        `/v2/models/${model}/versions/{version}/infer with one of its versions ` +
        `(${versions.join(', ')}), or promote one with \`maas promote ${model} <version>\``,
      { details: { model, versions: [...versions] } },
    );
  }
}

/** onnxruntime refused a registered, verified model: a platform bug, never the client's fault. */
export class ModelLoadError extends MaasError {
  constructor(
    readonly model: string,
    readonly version: number,
    options: { cause: unknown; variant?: RouteVariant },
  ) {
    super(
      'ModelLoadFailed',
      `onnxruntime could not create a session for model ${model} version ${version}`,
      {
        cause: options.cause,
        details: { model, version, ...(options.variant ? { variant: options.variant } : {}) },
      },
    );
  }

  /** the same failure, naming the route that asked, so it counts against that version's metrics */
  routed(variant: RouteVariant): ModelLoadError {
    return new ModelLoadError(this.model, this.version, { cause: this.cause, variant });
  }
}
