import { type Env, envNumber } from '../config/index.ts';

/** Caps that keep one request from exhausting a function instance's memory or time. */
export interface ProtocolLimits {
  /** request body bytes, checked before anything is parsed */
  maxBodyBytes: number;
  /** elements across all inputs of one request, checked before data is decoded and run */
  maxElements: number;
  /**
   * response body bytes as they travel back through API Gateway: binary bodies count at their
   * base64 size, since the Lambda response carries them encoded
   */
  maxResponseBytes: number;
}

const MiB = 1024 * 1024;

/**
 * 6 MiB is Lambda's synchronous payload limit, so a body the local stack accepts is one the cloud
 * accepts too. The element cap bounds `run()` independently of the body cap: 4 Mi FP32 elements
 * are 16 MiB of input, and raising the body cap for the local stack does not lift it.
 */
export const DEFAULT_LIMITS: Readonly<ProtocolLimits> = {
  maxBodyBytes: 6 * MiB,
  maxElements: 4 * MiB,
  maxResponseBytes: 6 * MiB,
};

/** Environment variables that override the defaults, one per limit. */
export const LIMIT_ENV = {
  maxBodyBytes: 'MAAS_MAX_BODY_BYTES',
  maxElements: 'MAAS_MAX_ELEMENTS',
  maxResponseBytes: 'MAAS_MAX_RESPONSE_BYTES',
} as const satisfies Record<keyof ProtocolLimits, string>;

/** Reads the limits once, at cold start; a malformed value fails the start, naming its variable. */
export const limitsFromEnv = (env: Env = process.env): ProtocolLimits => {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(LIMIT_ENV) as (keyof ProtocolLimits)[]) {
    limits[key] = envNumber(env, LIMIT_ENV[key], limits[key], { min: 1, integer: true });
  }
  return limits;
};
