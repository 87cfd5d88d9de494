import { loadConfig, config as processConfig } from '../config/index.ts';
import { Registry } from '../registry/index.ts';
import { S3ReadStore } from '../storage/s3-reader.ts';
import { ModelRuntime } from './model-runtime.ts';
import type { RuntimeHooks } from './provider.ts';

export interface RuntimeFromEnvOptions {
  hooks?: RuntimeHooks;
  /** read instead of `process.env` (tests, the local stack) */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * The runtime a predict instance uses: bucket, endpoint, caches and TTL from the environment.
 * It reads through `S3ReadStore` (signed GET/HEAD/LIST, no S3 client), which keeps the client's
 * code off every cold start.
 */
export const createRuntimeFromEnv = (options: RuntimeFromEnvOptions = {}): ModelRuntime => {
  const { storage, runtime } =
    options.env === undefined ? processConfig() : loadConfig(options.env);
  const store = new S3ReadStore(storage);
  return new ModelRuntime({
    registry: new Registry(store),
    store,
    ...runtime,
    ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
  });
};
