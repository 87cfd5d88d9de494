import type { Tensor } from 'onnxruntime-node';
import type { TensorSpec } from '../onnx/index.ts';
import type { InputLimits, Manifest, ServedVariant } from '../registry/index.ts';

/** How a request reached the version that served it. */
export type RouteVariant = 'production' | 'candidate' | 'pinned';

export interface ModelListing {
  name: string;
  production?: number;
  candidate?: { version: number; weight: number };
}

export interface ModelDescription {
  name: string;
  /** committed versions, ascending */
  versions: number[];
  /** the version described: the one asked for, or production when none was */
  version?: number;
  manifest: Manifest;
}

/**
 * A model version ready to run. `run` takes feeds that already match `inputs` (the codec has
 * checked names, datatypes and shapes) and returns exactly the outputs named.
 */
export interface LoadedModel {
  model: string;
  version: number;
  variant: RouteVariant;
  served: 'int8' | 'fp32';
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** the manifest's bound on one request (413 past it), when it has one */
  inputLimits?: InputLimits;
  /** set on the acquire that waited for a cold load; its `totalMs` feeds ModelLoadLatency */
  load?: { totalMs: number };
  /**
   * Routed to production after a promotion: when it was promoted and the known-good version it
   * would go back to, so its failures can be re-run there (the guard's shadow)
   */
  promotion?: { at: string; previous: number };
  run(feeds: Record<string, Tensor>, outputNames: string[]): Promise<Record<string, Tensor>>;
}

/**
 * What the serving wing (`src/serve`) needs from the runtime; `ModelRuntime` implements it over
 * the registry and a session cache. Errors are `MaasError`s with the codes `toHttpResponse` knows:
 * `ModelNotFound`, `VersionNotFound` (404), `StorageUnavailable`, `IntegrityError`,
 * `ModelUnavailable` (503), `Overloaded` (429). Putting `{model, version, variant}` in an error's
 * `details` lets the failure count against that version's metrics.
 */
export interface ModelProvider {
  listModels(): Promise<ModelListing[]>;
  describe(model: string, version?: number): Promise<ModelDescription>;
  /** with no version, routes by the model's aliases (production, or candidate by weight) */
  acquire(model: string, version?: number): Promise<LoadedModel>;
}

/** How a cold load went, for metrics and logs. */
export interface ModelLoadTiming {
  /** where the bytes came from: the object store or the local disk cache */
  source: 's3' | 'tmp';
  bytes: number;
  fetchMs: number;
  verifyMs: number;
  sessionMs: number;
  totalMs: number;
}

/** A LoadedModel with the whole timing of the cold load it waited for. */
export interface RuntimeLoadedModel extends LoadedModel {
  load?: ModelLoadTiming;
}

export interface ModelLoadEvent extends ModelLoadTiming {
  model: string;
  version: number;
  served: ServedVariant;
}

export interface ModelEvictEvent {
  model: string;
  version: number;
  bytes: number;
}

/** Observation points for metrics and logs; every hook is optional and must not throw. */
export interface RuntimeHooks {
  onModelLoad?(event: ModelLoadEvent): void;
  onModelEvict?(event: ModelEvictEvent): void;
}
