/**
 * Base of every error the core raises on purpose. Each concept folder defines its own subclasses
 * (ModelNotFoundError, InvalidTensorError, ModelRejectedError, ...); `src/protocol` maps them to
 * HTTP in one place. `code` is stable and machine-readable; `message` tells the user what was wrong
 * and what to send instead.
 */
export class MaasError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

export const errorMessage = (err: unknown): string =>
  err instanceof Error ? err.message : String(err);
