import { MaasError } from '../errors/index.ts';

type ErrorOptions = { cause?: unknown; details?: Record<string, unknown> };

/** A parameter of an explain request cannot be used; the message says what to send instead. */
export class ExplainParameterError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('InvalidExplainParameter', message, options);
  }
}

/**
 * The explanation asked for cannot finish within the evaluation cap or the invocation's remaining
 * time; the message names the budget or window that would.
 */
export class ExplanationTooCostlyError extends MaasError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('ExplanationTooCostly', message, options);
  }
}

/** The deployment has explanations turned off. */
export class ExplainDisabledError extends MaasError {
  constructor() {
    super(
      'ExplainDisabled',
      'explanations are turned off on this deployment (MAAS_EXPLAIN=off); POST the same request ' +
        'to the /infer route for a prediction',
    );
  }
}
