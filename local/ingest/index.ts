import { type ChildProcess, fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { S3EventRecord } from 'aws-lambda';
import type { IngestResult } from '../../src/ingest/index.ts';
import { INGEST_PROCESS_ENV, INGEST_SEMI_SPACE_MB } from '../../src/ingest/memory.ts';
import type { LocalS3 } from '../s3/index.ts';
import type { ErrorInfo, FromInstance, InvokeMessage } from './messages.ts';

export interface LocalIngestOptions {
  /** the local S3 whose ObjectCreated events drive ingest */
  s3: Pick<LocalS3, 'onObjectCreated'>;
  /** environment of the instance, over this process's (bucket, endpoint, credentials, settings) */
  env?: Record<string, string>;
  /** an invocation running longer is stopped, as Lambda stops one. @default 300000 (the stack's) */
  timeoutMs?: number;
  /** deliveries again after a failed one, as Lambda retries asynchronous invocations. @default 2 */
  retries?: number;
  /** wait before retry `n` (1-based); Lambda waits about a minute, then two. @default n seconds */
  retryDelayMs?: (retry: number) => number;
  /** the instance's log lines; default: this process's stdout/stderr */
  onOutput?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** what each upload came to */
  onResult?: (result: IngestResult) => void;
  /** an event given up on after its retries (AWS would send it to the failure queue) */
  onFailure?: (record: S3EventRecord, reason: string) => void;
}

export interface LocalIngest {
  /** an event delivered again, as Lambda's retries would (the stack's recovery at start) */
  deliver(record: S3EventRecord): void;
  /** resolves once every event delivered so far has been handled, retries included */
  idle(): Promise<void>;
  /** stops taking events; an invocation still running gets `graceMs` to finish, then is stopped */
  close(options?: { graceMs?: number }): Promise<void>;
}

type Outcome =
  | { kind: 'result'; results: IngestResult[] }
  | { kind: 'failed'; reason: string; retryAt?: number };

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');
/** the ObjectCreated filter of the cloud stack's notification (infra/ingest.ts) */
const matchesTrigger = (record: S3EventRecord): boolean =>
  record.s3.object.key.startsWith('incoming/') && record.s3.object.key.endsWith('.onnx');

/** One function instance in a child process, restarted after a timeout or a crash. */
class Instance {
  private child: ChildProcess | undefined;
  private ready: Promise<void> | undefined;
  private pending:
    | { id: number; resolve: (outcome: Outcome) => void; timer: NodeJS.Timeout }
    | undefined;
  private nextId = 1;

  constructor(private readonly options: LocalIngestOptions) {}

  private start(): Promise<void> {
    const child = fork(INSTANCE, [], {
      // V8's young generation as small as the function's (src/ingest/memory.ts)
      execArgv: ['--import', TSX_LOADER, `--max-semi-space-size=${INGEST_SEMI_SPACE_MB}`],
      // the allocator settings the ingest function runs with (src/ingest/memory.ts), so the local
      // child holds what the function would (without them a 335 MB model peaked at 1.64× not 1.38×)
      env: { ...INGEST_PROCESS_ENV, ...process.env, ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (source === null) continue;
      createInterface({ input: source }).on('line', (line) => {
        if (this.options.onOutput) this.options.onOutput(line, stream);
        else process[stream].write(`${line}\n`);
      });
    }
    const ready = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the ingest instance exited (${code})`)));
      child.on('message', (message: FromInstance) => {
        if (message.type === 'ready') resolve();
        else this.settle(message);
      });
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) {
        this.child = undefined;
        this.ready = undefined;
      }
      this.finish({ kind: 'failed', reason: `the instance exited (${signal ?? code})` });
    });
    return ready;
  }

  async invoke(record: S3EventRecord, timeoutMs: number): Promise<Outcome> {
    this.ready ??= this.start();
    try {
      await this.ready;
    } catch (err) {
      this.ready = undefined;
      return { kind: 'failed', reason: `the instance could not start: ${(err as Error).message}` };
    }
    const child = this.child;
    if (child === undefined) return { kind: 'failed', reason: 'the instance is gone' };
    const id = this.nextId++;
    const message: InvokeMessage = {
      id,
      event: { Records: [record] },
      deadline: Date.now() + timeoutMs,
    };
    return new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        this.finish({
          kind: 'failed',
          reason: `the invocation ran past its ${timeoutMs} ms timeout`,
        });
        // Stuck in native code: only stopping the process stops it, as Lambda does.
        child.kill('SIGKILL');
      }, timeoutMs);
      this.pending = { id, resolve, timer };
      child.send(message);
    });
  }

  private settle(message: Exclude<FromInstance, { type: 'ready' }>): void {
    if (this.pending?.id !== message.id) return;
    this.finish(
      message.type === 'result'
        ? { kind: 'result', results: message.results }
        : {
            kind: 'failed',
            reason: describeError(message.error),
            ...(message.error.retryAt === undefined ? {} : { retryAt: message.error.retryAt }),
          },
    );
  }

  private finish(outcome: Outcome): void {
    const pending = this.pending;
    if (pending === undefined) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(outcome);
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

const describeError = (error: ErrorInfo): string => `${error.name}: ${error.message}`;

/**
 * The local stand-in for the S3 → Lambda trigger of the cloud stack: ObjectCreated events under
 * `incoming/` for `.onnx` keys run the ingest handler, unchanged, in one function instance. The
 * instance is a child process, so ingest's onnxruntime work (quantizer, gate) never blocks the
 * local HTTP API, and one instance handles events in arrival order: uploads of the same key stay
 * in order, and the gate's latency figures are not skewed by a second ingest on the same two
 * cores. Failed invocations are retried as Lambda retries asynchronous ones.
 */
export function startLocalIngest(options: LocalIngestOptions): LocalIngest {
  const timeoutMs = options.timeoutMs ?? 300_000;
  const retries = options.retries ?? 2;
  const retryDelay = options.retryDelayMs ?? ((n: number) => n * 1000);
  const instance = new Instance(options);
  const queue: { record: S3EventRecord; attempt: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let waiters: (() => void)[] = [];
  let running = false;
  let closed = false;

  const isIdle = () => !running && queue.length === 0 && timers.size === 0;
  const notify = () => {
    if (!isIdle()) return;
    const done = waiters;
    waiters = [];
    for (const wake of done) wake();
  };

  const pump = async (): Promise<void> => {
    if (running || closed) return;
    const job = queue.shift();
    if (job === undefined) return notify();
    running = true;
    const outcome = await instance.invoke(job.record, timeoutMs);
    running = false;
    if (outcome.kind === 'result') {
      for (const result of outcome.results) options.onResult?.(result);
    } else if (job.attempt <= retries && !closed) {
      // A delivery turned away by a lease is retried once the lease has lapsed: a holder that
      // died (a crashed instance) cannot renew it, and Lambda's own retries come later still.
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          queue.push({ record: job.record, attempt: job.attempt + 1 });
          void pump();
        },
        Math.max(retryDelay(job.attempt), (outcome.retryAt ?? 0) - Date.now() + 250),
      );
      timers.add(timer);
    } else {
      options.onFailure?.(job.record, outcome.reason);
    }
    void pump();
  };

  const deliver = (record: S3EventRecord): void => {
    if (closed || !matchesTrigger(record)) return;
    queue.push({ record, attempt: 1 });
    void pump();
  };
  const unsubscribe = options.s3.onObjectCreated(deliver);

  return {
    deliver,
    idle: () =>
      isIdle() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)),
    async close({ graceMs = 0 } = {}) {
      closed = true;
      unsubscribe();
      queue.length = 0;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const deadline = Date.now() + graceMs;
      while (instance.busy && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await instance.stop();
      running = false;
      notify();
    },
  };
}
