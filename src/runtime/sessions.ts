import * as ort from 'onnxruntime-node';

/**
 * The one place onnxruntime sessions are created: predict's cold loads, ingest's warm-up and the
 * quantization gate's timed runs all get the same options, so what ingest measures is what predict
 * serves (docs/design.md, "Sessions").
 */
export interface SessionSettings {
  /** threads for one operator; default: onnxruntime's own choice */
  intraOpThreads?: number;
  /**
   * graph transforms at creation. @default 'all'. A graph ingest stored already optimized (its
   * manifest's `optimized.loadLevel`) is loaded with less: the work was done once, at ingest.
   */
  optimizationLevel?: OptimizationLevel;
  /** ingest only: where onnxruntime writes the graph it optimized (at `optimizationLevel`) */
  optimizedModelFilePath?: string;
  /**
   * ingest only, for a session that is never run: `false` skips the weights' pre-packing (a second,
   * kernel-ready copy of each MatMul weight), which onnxruntime does after it wrote the optimized
   * graph. @default true
   */
  prepack?: boolean;
  /**
   * ingest only, with `optimizedModelFilePath`: the written graph's initializers go to a file of
   * this name beside it, one at a time, instead of being encoded with the graph in one message
   * (a copy of every weight at once)
   */
  optimizedInitializersFile?: string;
}

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export type Session = ort.InferenceSession;
export type Feeds = Record<string, ort.Tensor>;
export type SessionOutputs = ort.InferenceSession.OnnxValueMapType;

export const sessionOptions = (
  settings: SessionSettings = {},
): ort.InferenceSession.SessionOptions => ({
  graphOptimizationLevel: settings.optimizationLevel ?? 'all',
  ...(settings.optimizedModelFilePath === undefined
    ? {}
    : { optimizedModelFilePath: settings.optimizedModelFilePath }),
  ...(settings.intraOpThreads === undefined ? {} : { intraOpNumThreads: settings.intraOpThreads }),
  // 4 = fatal only. onnxruntime's error lines quote node names verbatim, newlines included, on
  // stderr: at 3 a node named "x\n{...EMF...}\n" printed a line CloudWatch would read as another
  // model's metrics. Run failures still reach the caller as exceptions (and, escaped, the log).
  logSeverityLevel: 4,
  // No CPU arena: it keeps a burst's activations for the life of the session. bench/arena.ts,
  // encoder: [8, 512] keeps 475 MB with it, 24 MB without (peak 699 vs 552 MB); [64, 512] keeps
  // 3.8 GB with it, nothing without. The memory pattern stays on (off: larger peaks, no faster).
  enableCpuMemArena: false,
  ...configEntries(settings),
});

/** onnxruntime's session config entries (`session.*`) the settings ask for */
const configEntries = (
  settings: SessionSettings,
): Pick<ort.InferenceSession.SessionOptions, 'extra'> => {
  const session: Record<string, string> = {};
  if (settings.prepack === false) session.disable_prepacking = '1';
  if (settings.optimizedInitializersFile !== undefined) {
    session.optimized_model_external_initializers_file_name = settings.optimizedInitializersFile;
  }
  return Object.keys(session).length === 0 ? {} : { extra: { session } };
};

// The process-wide default logger (used before a session has its own) is held to the same level.
ort.env.logLevel = 'fatal';

export type SessionFactory = (bytes: Uint8Array, settings?: SessionSettings) => Promise<Session>;

export const createSession: SessionFactory = (bytes, settings) =>
  ort.InferenceSession.create(bytes, sessionOptions(settings));

/**
 * A session read from a model file: onnxruntime reads the weights straight from disk, so no copy
 * of the model's bytes sits in the JS heap while it creates the session (ingest's sessions, which
 * must fit a memory sized to the upload; docs/ingest.md, "Memory").
 */
export const createSessionFromFile = (path: string, settings?: SessionSettings): Promise<Session> =>
  ort.InferenceSession.create(path, sessionOptions(settings));

/** onnxruntime's version, for messages that tell a user what to test their model with */
export const runtimeVersion = (): string => ort.env.versions.common;
