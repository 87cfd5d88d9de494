export { type Claim, ClaimLostError, claimKey, endLease } from './claim.ts';
export {
  INGEST_REJECTION_CODES,
  IngestInProgressError,
  type IngestRejectionCode,
  UploadRejectedError,
} from './errors.ts';
export { createIngestDepsFromEnv } from './from-env.ts';
export { describeUpload, uploadInputs } from './identity.ts';
export {
  type IngestDeps,
  type IngestLogger,
  type IngestResult,
  ingestUpload,
  type UploadEvent,
} from './ingest.ts';
export { METADATA, parseUploadOptions, type UploadOptions } from './options.ts';
export { decodeSidecar, type Feeds, type SampleSet, synthesizeSamples } from './samples.ts';
export {
  INGEST_DEFAULTS,
  type IngestSettings,
  ingestSettingsFromEnv,
} from './settings.ts';
export { evaluateVariants, type VariantsInput, type WarmupReport, warmUp } from './trial.ts';
