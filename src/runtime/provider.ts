import type * as ort from 'onnxruntime-node';
import type { TensorSpec } from '../onnx/index.ts';
import type { Manifest, ServedVariant } from '../registry/types.ts';

/**
 * The runtime as the protocol layer sees it. Structurally identical to the protocol's
 * `ModelProvider`, so `ModelRuntime` satisfies both.
 */
export interface ModelProvider {
  listModels(): Promise<ModelListing[]>;
  /** throws ModelNotFoundError / VersionNotFoundError */
  describe(model: string, version?: number): Promise<ModelDescription>;
  /** routes by aliases when `version` is undefined */
  acquire(model: string, version?: number): Promise<LoadedModel>;
}

export interface ModelListing {
  name: string;
  production?: number;
  candidate?: { version: number; weight: number };
}

export interface ModelDescription {
  name: string;
  /** committed versions, ascending */
  versions: number[];
  /** the version described: the one asked for, else production, else the newest */
  version?: number;
  manifest: Manifest;
}

export type RouteVariant = 'production' | 'candidate' | 'pinned';

export interface LoadedModel {
  model: string;
  version: number;
  variant: RouteVariant;
  served: ServedVariant;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** set on the acquire that waited for a cold load (ModelLoadLatency) */
  load?: ModelLoadTiming;
  run(
    feeds: Record<string, ort.Tensor>,
    outputNames: string[],
  ): Promise<Record<string, ort.Tensor>>;
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
