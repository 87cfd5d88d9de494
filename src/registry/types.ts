import type { ModelSignature, OpsetImport, TensorSpec } from '../onnx/types.ts';
import type { QuantizationReport } from '../quantize/report.ts';

export type ServedVariant = 'int8' | 'fp32';
export type PromotePolicy = 'now' | 'canary' | 'manual';

export interface VariantInfo {
  key: string;
  sha256: string;
  bytes: number;
}

/**
 * A model's own bound on one request, enforced before the run (413 with the bound): the element
 * caps of the protocol bound the input, not what a model allocates from it (an encoder turned a
 * 525 KB [64, 512] request into 2 GB of activations).
 */
export interface InputLimits {
  /** elements across all inputs of one request */
  maxElements: number;
  /** `samples`: the largest sample request × the headroom; `metadata`: the upload's `maas-max-elements` */
  source: 'samples' | 'metadata';
}

/**
 * The mean of one input over the upload's sample requests, recorded by ingest: the `samples-mean`
 * baseline of explanations.
 */
export interface InputMean {
  /** sample requests averaged */
  samples: number;
  /** mean of every element of every sample */
  mean: number;
  /** dims of one example (the batch dim left out), when every sample had them */
  shape?: number[];
  /** mean per element of one example, row-major; only for inputs small enough to record */
  elements?: number[];
}

export interface OptimizedVariant extends VariantInfo {
  /** the variant it was optimized from */
  of: ServedVariant;
  /** onnxruntime version that wrote it: another version loads the plain variant */
  runtime: string;
  /** the transforms applied at ingest */
  level: 'extended';
  /** the optimization level predict creates its session with */
  loadLevel: 'disabled' | 'all';
  /** session creation, medians at ingest: the plain variant at `all` vs this one at `loadLevel` */
  createMs: { original: number; optimized: number };
}

export interface Manifest {
  model: string;
  version: number;
  served: ServedVariant;
  variants: { fp32: VariantInfo; int8?: VariantInfo };
  source: { key: string; etag: string };
  irVersion: number;
  opsetImports: OpsetImport[];
  producer: { name: string; version: string };
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  signature?: Pick<ModelSignature, 'opHistogram' | 'nodeCount' | 'parameterCount'>;
  quantization?: QuantizationReport;
  /**
   * the served variant with onnxruntime's portable graph transforms already applied (written by
   * ingest only when it loads measurably faster); predict uses it under the same runtime version
   */
  optimized?: OptimizedVariant;
  warmup?: { samples: number; p50Ms: number; loadMs: number };
  /** absent: only the platform's caps apply (no samples, or `maas-max-elements=off`) */
  inputLimits?: InputLimits;
  /** per input name; only when the upload came with sample requests */
  sampleMeans?: Record<string, InputMean>;
  createdAt: string;
}

export interface CandidateAlias {
  version: number;
  weight: number;
  /** ISO time after which the scheduled promote may make it production */
  bakeUntil: string;
  /**
   * Why the schedule did not promote it once baked (too little routed traffic to judge it): set
   * by the guard, shown by `maas show` and `maas models`; `code` changes only when the reason does
   */
  held?: { code: 'no-traffic' | 'too-little-traffic' | 'breaching'; reason: string; since: string };
}

export interface Aliases {
  model: string;
  production?: number;
  candidate?: CandidateAlias;
  /** versions that were production and healthy, newest last */
  knownGood: number[];
  /** versions rolled back: never auto-promoted again */
  rolledBack: number[];
  /** set when production was (re)assigned; the guard watches a version after promotion */
  promotedAt?: string;
  updatedAt: string;
}

export type HistoryEvent = 'registered' | 'rejected' | 'promoted' | 'candidate' | 'rolled-back';

export interface HistoryRecord {
  model: string;
  event: HistoryEvent;
  version?: number;
  at: string;
  actor: string;
  reason?: string;
  details?: Record<string, unknown>;
}
