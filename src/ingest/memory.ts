/**
 * What one ingest holds in memory, as bench/ingest-memory.ts measured it (docs/performance.md):
 * a fixed part (Node, the AWS SDK, onnxruntime and its first session, and buffers of the SDK and
 * the allocator that do not grow with the model) plus a multiple of the upload's size. Sessions
 * read the model from files, one float session at a time, so the multiple is set by the
 * quantizer: the float model parsed in memory beside the int8 variant it writes. The synth-time
 * check refuses an upload cap the ingest function's memory cannot hold with these figures.
 */
export const INGEST_MEMORY = {
  /**
   * a process that only loaded the code and created one small session peaked at 125 MB; the
   * rest is what the line through the two models' peaks crosses at size 0 (171–213 MB), rounded up
   */
  fixedMb: 230,
  /**
   * the slope between the encoder's and the 320 MB model's peaks (2.1–2.4 over five runs),
   * rounded up: 230 + 2.4 × size is above every peak measured (encoder 261–304 MB, the 320 MB
   * model 838–920 MB)
   */
  perModelByte: 2.4,
} as const;

/** Memory (MB) an ingest function needs to take uploads of up to `capMb`. */
export const ingestMemoryNeededMb = (capMb: number): number =>
  Math.ceil(INGEST_MEMORY.fixedMb + INGEST_MEMORY.perModelByte * capMb);

/** The largest upload (MB) an ingest function of `memoryMb` takes. */
export const largestModelMb = (memoryMb: number): number =>
  Math.max(0, Math.floor((memoryMb - INGEST_MEMORY.fixedMb) / INGEST_MEMORY.perModelByte));

/**
 * The ingest process's allocator settings. glibc's default mmap threshold rises as large blocks
 * are freed, after which weights of a few MB land in the heap, where memory freed by one session
 * stays in the process: the fp32 session of a 320 MB model then peaked anywhere between 1.2× and
 * 1.95× its size from one run to the next. Fixed at 4 MB, every weight and model buffer gets its
 * own mapping, returned when freed, and the session peaked at 1.05× in every run.
 */
export const INGEST_PROCESS_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(128 * 1024),
};

/**
 * Scratch disk (MB) ingest's work dir needs for uploads of up to `capMb`: the upload, the
 * calibration graph (a copy of it with outputs appended), the int8 variants tried (a quarter each)
 * and the pre-optimized graph (at most the upload's size), with room to spare; Lambda's /tmp is
 * 512 MB unless the function asks for more (up to 10,240).
 */
export const ingestDiskNeededMb = (capMb: number): number =>
  Math.min(10_240, Math.max(512, Math.ceil(3.5 * capMb + 64)));
