export {
  ModelIntegrityError,
  ModelLoadError,
  ModelUnavailableError,
  NoProductionVersionError,
} from './errors.ts';
export { createRuntimeFromEnv, type RuntimeFromEnvOptions } from './from-env.ts';
export {
  ModelRuntime,
  type ModelRuntimeOptions,
  type RegistryReader,
  type SessionFactory,
} from './model-runtime.ts';
export type {
  LoadedModel,
  ModelDescription,
  ModelEvictEvent,
  ModelListing,
  ModelLoadEvent,
  ModelLoadTiming,
  ModelProvider,
  RouteVariant,
  RuntimeHooks,
  RuntimeLoadedModel,
} from './provider.ts';
