import { loadConfig } from '../config/index.ts';
import { Registry } from '../registry/index.ts';
import { S3ObjectStore } from '../storage/s3.ts';
import type { IngestDeps, IngestLogger } from './ingest.ts';
import { ingestSettingsFromEnv } from './settings.ts';

/** What an ingest function instance works with, read once from its environment at cold start. */
export const createIngestDepsFromEnv = (
  options: { env?: Readonly<Record<string, string | undefined>>; logger?: IngestLogger } = {},
): IngestDeps => {
  const env = options.env ?? process.env;
  const { storage } = loadConfig(env);
  const store = new S3ObjectStore(storage);
  return {
    registry: new Registry(store),
    settings: ingestSettingsFromEnv(env),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  };
};
