import { MaasError } from '../errors/index.ts';

/** Why ingest itself (rather than `validateModel`) turned an upload away; each is a stable `code`. */
export const INGEST_REJECTION_CODES = [
  'TooLarge',
  'InvalidUploadOption',
  'InvalidSamples',
  'LoadFailed',
  'LoadTooSlow',
  'LoadTooLarge',
  'WarmupFailed',
  'WarmupTooSlow',
  'OutputSignatureMismatch',
  'Superseded',
  'SourceGone',
  'IngestTimedOut',
  'IngestFailed',
] as const;
export type IngestRejectionCode = (typeof INGEST_REJECTION_CODES)[number];

/**
 * An upload that will not be registered. Ingest records it as a `rejected` history record whose
 * reason is this message, so the message says what was wrong and what to upload instead.
 */
export class UploadRejectedError extends MaasError {
  declare readonly code: IngestRejectionCode;

  constructor(
    code: IngestRejectionCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
  }
}

/**
 * Another invocation is ingesting the same upload right now. Thrown, not recorded: the trigger
 * retries later and then finds that invocation's outcome.
 */
export class IngestInProgressError extends MaasError {
  constructor(sourceKey: string, etag: string, until: string) {
    super(
      'IngestInProgress',
      `${sourceKey} (etag ${etag}) is being ingested by another invocation, which holds it until ${until} unless it renews its lease; retry after that`,
      { details: { sourceKey, etag, until } },
    );
  }
}
