import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaasError } from '../errors/index.ts';

/**
 * Every setting the platform reads from the environment, typed and validated in one place. The
 * CDK stack sets the same names it reads here; `npm start` sets them for the local stack.
 */
export interface StorageConfig {
  /** `MAAS_BUCKET` */
  bucket: string;
  /** `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`): a local S3-compatible endpoint; unset on AWS */
  endpoint?: string;
  /** `AWS_REGION` (or `AWS_DEFAULT_REGION`) */
  region: string;
}

export interface RuntimeConfig {
  /** `MAAS_SESSION_CACHE_BYTES`: model bytes kept as live sessions before the least recently used is released */
  sessionCacheBytes: number;
  /** `MAAS_TMP_CACHE_DIR`: model bytes cached on local disk, keyed by sha256 */
  tmpCacheDir: string;
  /** `MAAS_TMP_CACHE_BYTES`: bound of that disk cache */
  tmpCacheBytes: number;
  /** `MAAS_ALIAS_TTL_MS`: how long a warm instance trusts `aliases.json` before a conditional GET */
  aliasTtlMs: number;
  /** `MAAS_INTRA_OP_THREADS`: onnxruntime threads per session */
  intraOpThreads: number;
  /** `MAAS_RETRY_AFTER_SECONDS`: `Retry-After` sent when model storage is unreachable */
  retryAfterSeconds: number;
  /** `MAAS_RANGED_GET_MIN_BYTES`: models at least this large are read with parallel ranged GETs */
  rangedGetMinBytes: number;
  /** `MAAS_RANGED_GET_PART_BYTES`: bytes per ranged GET */
  rangedGetPartBytes: number;
  /** `MAAS_RANGED_GET_CONCURRENCY`: ranged GETs in flight at once */
  rangedGetConcurrency: number;
  /**
   * `MAAS_PRELOAD_MODELS`: comma-separated models whose production and candidate versions a
   * provisioned-concurrency instance loads during its init (cdk.json `maas:predictPreloadModels`)
   */
  preloadModels: string[];
}

export interface LocalConfig {
  /** `MAAS_HOME`: data directory of the local stack */
  home: string;
  /** `MAAS_S3_PORT` */
  s3Port: number;
  /** `PORT`: the local HTTP API */
  apiPort: number;
  /** `MAAS_CONSOLE_PORT`: the console's web page (and `/metrics`), `npm start`'s or `maas console`'s */
  consolePort: number;
  /** `MAAS_WORKERS`: handler instances, each serving one request at a time like a Lambda instance */
  workers: number;
  /** `MAAS_QUEUE_LIMIT`: requests waiting for a free instance before the local API answers 429 */
  queueLimit: number;
  /** `MAAS_MAX_BODY_BYTES`: request body cap of the local API (Lambda's synchronous payload limit) */
  maxBodyBytes: number;
  /**
   * `MAAS_MAX_BODY_BYTES_IN_FLIGHT`: request body bytes the local API holds at once, across every
   * connection (read, queued or being served); a request past it gets 503 before its body is read
   */
  maxBodyBytesInFlight: number;
  /** `MAAS_INVOKE_TIMEOUT_MS`: an invocation running longer is stopped (API Gateway's 30 s cap) */
  invokeTimeoutMs: number;
}

export interface MaasConfig {
  storage: StorageConfig;
  runtime: RuntimeConfig;
  local: LocalConfig;
}

const MiB = 1024 * 1024;

/** Defaults of every setting; the Lambda memory size shapes the session cache when present. */
export const DEFAULTS = {
  bucket: 'maas-models',
  region: 'us-east-1',
  /** share of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` given to live sessions: the rest is Node, onnxruntime arenas and requests */
  sessionCacheShareOfMemory: 0.4,
  /** outside Lambda */
  sessionCacheBytes: 1024 * MiB,
  /** Lambda's /tmp is 512 MB by default: leave room for everything else */
  tmpCacheBytes: 400 * MiB,
  tmpCacheDirName: 'maas-model-cache',
  aliasTtlMs: 5_000,
  retryAfterSeconds: 2,
  /** below this one GET is as fast as several: the round trips dominate */
  rangedGetMinBytes: 16 * MiB,
  rangedGetPartBytes: 8 * MiB,
  rangedGetConcurrency: 6,
  home: '.maas',
  s3Port: 4569,
  apiPort: 3000,
  consolePort: 3001,
  queueLimit: 64,
  /** Lambda rejects synchronous request payloads over 6 MB */
  maxBodyBytes: 6 * MiB,
  /** ten bodies at the cap: 150 clients sending 5 MiB each took the API from 198 MB to 928 MB RSS */
  maxBodyBytesInFlight: 64 * MiB,
  invokeTimeoutMs: 30_000,
} as const;

export class ConfigError extends MaasError {
  constructor(name: string, value: string, expected: string) {
    super('InvalidConfig', `${name}=${JSON.stringify(value)} is not valid: set it to ${expected}`, {
      details: { name, value },
    });
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * `value` without its `undefined` properties: spread over defaults, an option or variable that
 * was not given keeps the default instead of replacing it with `undefined`.
 */
export const definedOnly = <T extends object>(value: T): Defined<T> =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Defined<T>;

/** a record (an environment) keeps its index signature; an options object, its optional keys */
type Defined<T> = string extends keyof T
  ? Record<string, Exclude<T[keyof T], undefined>>
  : { [K in keyof T]?: Exclude<T[K], undefined> };

/** A variable's trimmed value; unset and blank are the same: not set. */
export const envText = (env: Env, name: string): string | undefined => {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
};

export interface NumberRange {
  min: number;
  /** @default no upper bound */
  max?: number;
  integer?: boolean;
  /** `min` itself is refused (a weight above 0, a positive scale) */
  exclusiveMin?: boolean;
}

/**
 * A numeric variable checked against its range, or `fallback` when it is not set. Every reader
 * of the platform's settings (runtime, local stack, ingest, guard) goes through here, so a bad
 * value always fails the start with the same kind of message: the variable, its value, and what
 * to set instead.
 */
export const envNumber = <F extends number | undefined>(
  env: Env,
  name: string,
  fallback: F,
  range: NumberRange,
): number | F => {
  const raw = envText(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const { min, max = Number.POSITIVE_INFINITY, integer = false, exclusiveMin = false } = range;
  const upTo = Number.isFinite(max) ? ` ${exclusiveMin ? 'up ' : ''}to ${max}` : '';
  const inRange = (exclusiveMin ? value > min : value >= min) && value <= max;
  if (integer && !(Number.isSafeInteger(value) && inRange)) {
    throw new ConfigError(name, raw, `an integer from ${min}${upTo}`);
  }
  if (!Number.isFinite(value) || !inRange) {
    throw new ConfigError(name, raw, `a number ${exclusiveMin ? 'above' : 'from'} ${min}${upTo}`);
  }
  return value;
};

const integer = (
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number => envNumber(env, name, fallback, { min, max, integer: true });

const port = (env: Env, name: string, fallback: number): number =>
  integer(env, name, fallback, 0, 65_535);

const endpointUrl = (env: Env): string | undefined => {
  for (const name of ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL']) {
    const raw = envText(env, name);
    if (raw === undefined) continue;
    if (!URL.canParse(raw))
      throw new ConfigError(name, raw, 'an absolute URL such as http://127.0.0.1:4569');
    return raw;
  }
  return undefined;
};

const defaultSessionCacheBytes = (env: Env): number => {
  const memoryMb = integer(env, 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 0, 0);
  if (memoryMb === 0) return DEFAULTS.sessionCacheBytes;
  return Math.floor(memoryMb * MiB * DEFAULTS.sessionCacheShareOfMemory);
};

/** Where the model bucket is: the part of the configuration every S3 client needs. */
export const storageFromEnv = (env: Env = process.env): StorageConfig => {
  const endpoint = endpointUrl(env);
  return {
    bucket: envText(env, 'MAAS_BUCKET') ?? DEFAULTS.bucket,
    ...(endpoint === undefined ? {} : { endpoint }),
    region: envText(env, 'AWS_REGION') ?? envText(env, 'AWS_DEFAULT_REGION') ?? DEFAULTS.region,
  };
};

/** Reads and validates the configuration; throws ConfigError naming the first bad variable. */
export const loadConfig = (env: Env = process.env): MaasConfig => {
  const cores = availableParallelism();
  return {
    storage: storageFromEnv(env),
    runtime: {
      sessionCacheBytes: integer(env, 'MAAS_SESSION_CACHE_BYTES', defaultSessionCacheBytes(env), 1),
      tmpCacheDir: envText(env, 'MAAS_TMP_CACHE_DIR') ?? join(tmpdir(), DEFAULTS.tmpCacheDirName),
      tmpCacheBytes: integer(env, 'MAAS_TMP_CACHE_BYTES', DEFAULTS.tmpCacheBytes, 0),
      aliasTtlMs: integer(env, 'MAAS_ALIAS_TTL_MS', DEFAULTS.aliasTtlMs, 0),
      intraOpThreads: integer(env, 'MAAS_INTRA_OP_THREADS', cores, 1, 256),
      retryAfterSeconds: integer(
        env,
        'MAAS_RETRY_AFTER_SECONDS',
        DEFAULTS.retryAfterSeconds,
        1,
        3_600,
      ),
      rangedGetMinBytes: integer(env, 'MAAS_RANGED_GET_MIN_BYTES', DEFAULTS.rangedGetMinBytes, 1),
      rangedGetPartBytes: integer(
        env,
        'MAAS_RANGED_GET_PART_BYTES',
        DEFAULTS.rangedGetPartBytes,
        1,
      ),
      rangedGetConcurrency: integer(
        env,
        'MAAS_RANGED_GET_CONCURRENCY',
        DEFAULTS.rangedGetConcurrency,
        1,
        64,
      ),
      preloadModels: (envText(env, 'MAAS_PRELOAD_MODELS') ?? '')
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    },
    local: {
      home: envText(env, 'MAAS_HOME') ?? DEFAULTS.home,
      s3Port: port(env, 'MAAS_S3_PORT', DEFAULTS.s3Port),
      apiPort: port(env, 'PORT', DEFAULTS.apiPort),
      consolePort: port(env, 'MAAS_CONSOLE_PORT', DEFAULTS.consolePort),
      workers: integer(env, 'MAAS_WORKERS', cores, 1, 256),
      queueLimit: integer(env, 'MAAS_QUEUE_LIMIT', DEFAULTS.queueLimit, 0),
      maxBodyBytes: integer(env, 'MAAS_MAX_BODY_BYTES', DEFAULTS.maxBodyBytes, 1),
      maxBodyBytesInFlight: integer(
        env,
        'MAAS_MAX_BODY_BYTES_IN_FLIGHT',
        DEFAULTS.maxBodyBytesInFlight,
        1,
      ),
      invokeTimeoutMs: integer(env, 'MAAS_INVOKE_TIMEOUT_MS', DEFAULTS.invokeTimeoutMs, 1),
    },
  };
};

let cached: MaasConfig | undefined;

/** The process configuration, read once (at cold start) from `process.env`. */
export const config = (): MaasConfig => {
  cached ??= loadConfig();
  return cached;
};
