import * as ort from 'onnxruntime-node';
import { errorMessage } from '../errors/index.ts';
import { UploadRejectedError } from './errors.ts';
import type { Feeds } from './samples.ts';

export interface TrialCaps {
  loadTimeoutMs: number;
  runTimeoutMs: number;
}

export interface WarmupReport {
  samples: number;
  p50Ms: number;
  loadMs: number;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? 0)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

const ms = (value: number): string => `${Math.round(value)} ms`;

/**
 * Loads the model in onnxruntime with the serving runtime's session options and runs every sample
 * once, as a predict instance would on a cold start. onnxruntime's `create` and `run` are
 * synchronous native calls that nothing in the process can interrupt, so the caps are checked as
 * each call returns; a call that never returns is bounded by the invocation's own deadline (the
 * ingest claim turns that into a rejection on the next delivery).
 */
export const warmUp = async (
  bytes: Uint8Array,
  samples: readonly Feeds[],
  caps: TrialCaps,
  sessionOptions: ort.InferenceSession.SessionOptions,
): Promise<WarmupReport> => {
  const loadStart = performance.now();
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, sessionOptions);
  } catch (err) {
    throw new UploadRejectedError(
      'LoadFailed',
      `onnxruntime could not load the model: ${errorMessage(err)}. Check that the model runs in ` +
        `onnxruntime ${ort.env.versions.common} (CPU) before uploading it.`,
      { cause: err },
    );
  }
  try {
    const loadMs = performance.now() - loadStart;
    if (loadMs > caps.loadTimeoutMs) {
      throw new UploadRejectedError(
        'LoadTooSlow',
        `onnxruntime took ${ms(loadMs)} to load the model, over the ${ms(caps.loadTimeoutMs)} cap: ` +
          'a predict instance could not start in time. Upload a smaller or simpler model.',
        { details: { loadMs } },
      );
    }
    const times: number[] = [];
    for (const [index, feeds] of samples.entries()) {
      const start = performance.now();
      try {
        await session.run(feeds);
      } catch (err) {
        throw new UploadRejectedError(
          'WarmupFailed',
          `The model failed on sample #${index + 1}: ${errorMessage(err)}. Upload samples ` +
            '(a .samples.json sidecar) the model accepts, or fix the model.',
          { cause: err, details: { sample: index + 1 } },
        );
      }
      const runMs = performance.now() - start;
      if (runMs > caps.runTimeoutMs) {
        throw new UploadRejectedError(
          'WarmupTooSlow',
          `The model took ${ms(runMs)} on sample #${index + 1}, over the ${ms(caps.runTimeoutMs)} ` +
            'cap: predict requests would time out. Upload a faster model or smaller samples.',
          { details: { sample: index + 1, runMs } },
        );
      }
      times.push(runMs);
    }
    return { samples: samples.length, p50Ms: median(times), loadMs };
  } finally {
    await session.release();
  }
};
