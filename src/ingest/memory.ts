/**
 * What one ingest holds in memory, as bench/ingest-memory.ts measured it (docs/performance.md):
 * a fixed cost (Node, the AWS SDK, onnxruntime and its first session) plus a multiple of the
 * upload's size (the bytes themselves, onnxruntime's copy while it parses them, the sessions of
 * the fp32 and int8 variants the gate runs side by side, the calibration graph). The synth-time
 * check refuses an upload cap the ingest function's memory cannot hold with these figures.
 */
export const INGEST_MEMORY = {
  /** peak RSS of a process that loaded ingest's code and created one small session */
  fixedMb: 160,
  /** peak RSS above the fixed cost, per byte of the model, rounded up from the measured worst */
  perModelByte: 6.5,
} as const;

/** Memory (MB) an ingest function needs to take uploads of up to `capMb`. */
export const ingestMemoryNeededMb = (capMb: number): number =>
  Math.ceil(INGEST_MEMORY.fixedMb + INGEST_MEMORY.perModelByte * capMb);

/** The largest upload (MB) an ingest function of `memoryMb` takes. */
export const largestModelMb = (memoryMb: number): number =>
  Math.max(0, Math.floor((memoryMb - INGEST_MEMORY.fixedMb) / INGEST_MEMORY.perModelByte));
