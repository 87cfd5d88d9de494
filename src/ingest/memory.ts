/**
 * What one ingest holds in memory, as bench/ingest-memory.ts measured it (docs/performance.md):
 * a fixed part (Node, the AWS SDK, onnxruntime and its first session, and what onnxruntime and
 * the allocator keep once a model's session is gone) plus a multiple of the upload's size.
 * Sessions read the model from files, one float session at a time, and the quantizers write their
 * variants out tensor by tensor, so the multiple is the float model parsed in memory plus the
 * int8 weights being built. The synth-time check refuses an upload cap the ingest function's
 * memory cannot hold with these figures.
 */
export const INGEST_MEMORY = {
  /**
   * a process that only loaded the code and created one small session peaked at 120–134 MB, a
   * whole ingest of the 4 KB Iris model at 126–134 MB; the line through the two models' peaks
   * crosses size 0 at 184 MB: rounded up
   */
  fixedMb: 200,
  /**
   * the slope between the encoder's and the 320 MB model's peaks (1.1), rounded up with room:
   * 200 + 1.5 × size is above every peak measured with sessions from files (encoder 211–239 MB,
   * the 320 MB model 541–620 MB; since 2026-12-03 183–189 MB and 538–542 MB, with a fixed cost of
   * 114–116 MB: the figures are kept, with more room)
   */
  perModelByte: 1.5,
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
 * 1.95× its size from one run to the next; fixed at 128 KB, every weight and model buffer gets
 * its own mapping, returned when freed, and the session peaked at 1.05× in every run. One malloc
 * arena instead of one per thread of onnxruntime's pool: what a released session's threads freed
 * is reused by the next step instead of sitting in their own arenas (the encoder's peak, 2.3–2.4×
 * its size above the fixed cost with per-thread arenas, 2.1× with one).
 */
export const INGEST_PROCESS_ENV: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: String(128 * 1024),
  MALLOC_ARENA_MAX: '1',
};

/**
 * Node's options for the ingest process. V8's young generation grows its two semi-spaces to
 * their maximum while ingest allocates fast (the download, the quantizer's model parses), and
 * keeps them: 16 MB each by Node's default, 20-25 MB more of the encoder's peak than with 2 MB,
 * no slower (bench/ingest-memory.ts). Lambda's own Node bootstrap sizes them from the function's
 * memory (a few per cent of it: tens of MB at ingest's 3,008 MB) unless NODE_OPTIONS names the
 * semi-space or the old space itself; it then sizes neither, so the old space is named too
 * (`ingestNodeOptions`).
 */
export const INGEST_SEMI_SPACE_MB = 2;

/**
 * NODE_OPTIONS' flags for an ingest function of `memoryMb`: the semi-space above, and the old
 * space at 90% of the memory, about what the bootstrap would have set (the model's bytes and
 * onnxruntime's live outside it; what ingest keeps there is tens of MB).
 */
export const ingestNodeOptions = (memoryMb: number): string[] => [
  `--max-semi-space-size=${INGEST_SEMI_SPACE_MB}`,
  `--max-old-space-size=${Math.floor(memoryMb * 0.9)}`,
];

/**
 * Scratch disk (MB) ingest's work dir needs for uploads of up to `capMb`: the upload, the
 * calibration graph (a copy of it with outputs appended) and the int8 variants tried (a quarter
 * each), then the upload and the served variant with the pre-optimized graph twice (its weights
 * as onnxruntime wrote them beside it, and the graph they are inlined into: the upload's size
 * each, at most), with room to spare; Lambda's /tmp is 512 MB unless the function asks for more
 * (up to 10,240).
 */
export const ingestDiskNeededMb = (capMb: number): number =>
  Math.min(10_240, Math.max(512, Math.ceil(3.5 * capMb + 64)));
