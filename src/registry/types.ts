import type { ModelSignature, OpsetImport, TensorSpec } from '../onnx/types.ts';

export type ServedVariant = 'int8' | 'fp32';
export type PromotePolicy = 'now' | 'canary' | 'manual';

export interface VariantInfo {
  key: string;
  sha256: string;
  bytes: number;
}

/** One entry of the quantization report. */
export interface QuantizedNodeReport {
  node: string;
  opType: string;
  action: 'quantized' | 'skipped';
  /** why it was skipped (too small, excluded by option, unsupported layout, ...) */
  reason?: string;
}

export interface QuantizationReport {
  scheme: string;
  /** `applied`: int8 variant written; `not-applied`: no variant (why in `reason`) */
  status: 'applied' | 'not-applied';
  reason?: string;
  nodes: QuantizedNodeReport[];
  nodesQuantized: number;
  nodesSkipped: number;
  sizeRatio?: number;
  latencyRatio?: number;
  accuracy?: { cosine: number; maxAbsError: number; top1Agreement?: number };
  /** why int8 is or is not served */
  decision?: string;
  quantizeMs?: number;
  /** static schemes: how activation ranges were measured (`synthesized` samples calibrate weakly) */
  calibration?: {
    method: 'minmax' | 'percentile';
    samples: number;
    /** `sidecar`, or `synthesized` (inputs made up from the signature: a weak calibration) */
    source: string;
    /** activations quantized, of those planned; the others had a noise margin below the minimum */
    activations?: number;
    planned?: number;
    minNoiseMargin?: number;
  };
  /** the accuracy test the gate applied, from the upload's `maas-accuracy` (e.g. `cosine>=0.999`) */
  accuracyTest?: string;
  /** the other int8 schemes ingest tried on this upload, with the gate's verdict on each */
  alternatives?: {
    scheme: string;
    accepted: boolean;
    decision: string;
    sizeRatio?: number;
    latencyRatio?: number;
    cosine?: number;
    top1Agreement?: number;
  }[];
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
  createdAt: string;
}

export interface CandidateAlias {
  version: number;
  weight: number;
  /** ISO time after which the scheduled promote may make it production */
  bakeUntil: string;
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

export type HistoryEvent =
  | 'registered'
  | 'rejected'
  | 'promoted'
  | 'candidate'
  | 'rolled-back'
  | 'candidate-dropped';

export interface HistoryRecord {
  model: string;
  event: HistoryEvent;
  version?: number;
  at: string;
  actor: string;
  reason?: string;
  details?: Record<string, unknown>;
}
