import { MaasError } from '../errors/index.ts';

/** The accuracy/latency gate was called with nothing it can compare. */
export class InvalidGateInputError extends MaasError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('InvalidGateInput', message, { details });
  }
}
