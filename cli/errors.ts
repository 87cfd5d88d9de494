import { MaasError } from '../src/errors/index.ts';

/** A command line the CLI cannot act on: a bad option value, a missing file. */
export class CliUsageError extends MaasError {
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}

export class NoVersionsError extends MaasError {
  constructor(model: string) {
    super(
      'NoVersions',
      `model "${model}" has no registered version yet; see why with \`maas history ${model}\``,
      { details: { model } },
    );
  }
}

/** Ingest refused the pushed model; the reason is ingest's. */
export class UploadRejectedError extends MaasError {
  constructor(model: string, reason: string, code: string | undefined) {
    super('UploadRejected', `model "${model}" was rejected: ${reason}`, {
      details: { model, code },
    });
  }
}

export class OutcomeTimeoutError extends MaasError {
  constructor(key: string, seconds: number) {
    super(
      'OutcomeTimeout',
      `no registration or rejection of ${key} after ${seconds} s: is ingest running (\`npm start\` locally)? Check later with \`maas history <model>\`, or push with a longer --timeout`,
      { details: { key, seconds } },
    );
  }
}

export function parsePositiveInteger(value: string, what: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new CliUsageError(`${what} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return parsed;
}
