import type { LoadedModel } from '../protocol/index.ts';
import type { ServedVariant } from '../registry/index.ts';

export type {
  LoadedModel,
  ModelDescription,
  ModelListing,
  ModelProvider,
  RouteVariant,
} from '../protocol/index.ts';

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

/** The protocol's LoadedModel with the whole timing of the cold load it waited for. */
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
