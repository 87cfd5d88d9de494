import { ConfigError, type Env, envNumber, envText, loadConfig } from '../config/index.ts';
import { DEFAULT_MIN_COSINE, type GateObjective } from '../quantize/index.ts';

/** What ingest accepts and how it decides; every field has its default in `INGEST_DEFAULTS`. */
export interface IngestSettings {
  /** `MAAS_MAX_MODEL_BYTES`: uploads over this are rejected from their HEAD, before download */
  maxModelBytes: number;
  /** `MAAS_MAX_SAMPLES_BYTES`: the `.samples.json` sidecar over this is rejected */
  maxSamplesBytes: number;
  /** `MAAS_MAX_SAMPLES`: sample requests used for warm-up and the gate (the first ones) */
  maxSamples: number;
  /** `MAAS_MAX_SAMPLE_ELEMENTS`: elements across the inputs of one sample request */
  maxSampleElements: number;
  /** `MAAS_INGEST_LOAD_TIMEOUT_MS`: an onnxruntime session must be created within this */
  loadTimeoutMs: number;
  /** `MAAS_INGEST_RUN_TIMEOUT_MS`: each warm-up run must finish within this */
  runTimeoutMs: number;
  /**
   * `MAAS_INGEST_LOAD_SLACK_BYTES`: what loading a model may add to the process's memory beyond
   * 4× its file size (constant folding can expand a 170-byte file to 512 MB)
   */
  loadSlackBytes: number;
  /** `MAAS_GATE_MIN_COSINE`: int8 must keep this cosine similarity to fp32 on every output */
  minCosine: number;
  /** `MAAS_GATE_OBJECTIVE`: `latency` (int8 must also be no slower) or `size` */
  objective: GateObjective;
  /** `MAAS_CANARY_WEIGHT`: candidate traffic share when the upload names none */
  canaryWeight: number;
  /** `MAAS_BAKE_MINUTES`: how long a candidate bakes before promote may make it production */
  bakeMinutes: number;
  /** `MAAS_INTRA_OP_THREADS`: onnxruntime threads, as the serving runtime uses them */
  intraOpThreads: number;
}

const MiB = 1024 * 1024;

export const INGEST_DEFAULTS: Readonly<Omit<IngestSettings, 'intraOpThreads'>> = Object.freeze({
  maxModelBytes: 1024 * MiB,
  maxSamplesBytes: 64 * MiB,
  maxSamples: 32,
  /** the serving protocol's element cap: a sample is a request */
  maxSampleElements: 4 * MiB,
  /** far above a healthy model's seconds, far below Lambda's 15 minutes */
  loadTimeoutMs: 60_000,
  /** a sample slower than predict's timeout could never be served */
  runTimeoutMs: 10_000,
  loadSlackBytes: 256 * MiB,
  minCosine: DEFAULT_MIN_COSINE,
  objective: 'latency',
  canaryWeight: 0.1,
  bakeMinutes: 30,
});

/** The integer settings: variable, and the range a value must fall in. */
const INTEGERS = {
  maxModelBytes: ['MAAS_MAX_MODEL_BYTES', 2 * 1024 * MiB],
  maxSamplesBytes: ['MAAS_MAX_SAMPLES_BYTES', undefined],
  maxSamples: ['MAAS_MAX_SAMPLES', 10_000],
  maxSampleElements: ['MAAS_MAX_SAMPLE_ELEMENTS', undefined],
  loadTimeoutMs: ['MAAS_INGEST_LOAD_TIMEOUT_MS', undefined],
  runTimeoutMs: ['MAAS_INGEST_RUN_TIMEOUT_MS', undefined],
  loadSlackBytes: ['MAAS_INGEST_LOAD_SLACK_BYTES', undefined],
} as const satisfies Partial<Record<keyof IngestSettings, readonly [string, number | undefined]>>;

/** Reads the ingest settings once (at cold start); a bad value names its variable. */
export const ingestSettingsFromEnv = (env: Env = process.env): IngestSettings => {
  const d = INGEST_DEFAULTS;
  const objective = envText(env, 'MAAS_GATE_OBJECTIVE') ?? d.objective;
  if (objective !== 'latency' && objective !== 'size') {
    throw new ConfigError('MAAS_GATE_OBJECTIVE', objective, '`latency` or `size`');
  }
  const integers = Object.fromEntries(
    Object.entries(INTEGERS).map(([key, [name, max]]) => [
      key,
      envNumber(env, name, d[key as keyof typeof INTEGERS], {
        min: 1,
        integer: true,
        ...(max === undefined ? {} : { max }),
      }),
    ]),
  ) as Record<keyof typeof INTEGERS, number>;
  return {
    ...integers,
    minCosine: envNumber(env, 'MAAS_GATE_MIN_COSINE', d.minCosine, {
      min: 0,
      max: 1,
      exclusiveMin: true,
    }),
    objective,
    canaryWeight: envNumber(env, 'MAAS_CANARY_WEIGHT', d.canaryWeight, { min: 0, max: 1 }),
    bakeMinutes: envNumber(env, 'MAAS_BAKE_MINUTES', d.bakeMinutes, { min: 0, max: 7 * 24 * 60 }),
    intraOpThreads: loadConfig(env).runtime.intraOpThreads,
  };
};
