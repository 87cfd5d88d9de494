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
export {
  createSession,
  createSessionFromFile,
  type Feeds,
  type OptimizationLevel,
  runtimeVersion,
  type Session,
  type SessionFactory,
  type SessionOutputs,
  type SessionSettings,
  sessionOptions,
} from './sessions.ts';
export { datatypeOfOrt, fromOrtTensor, ORT_TYPES, toOrtTensor } from './tensors.ts';
