import { type ChildProcess, fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { ErrorInfo, FromWorker, OutputChunk, ToWorker, WorkerInit } from './messages.ts';

export type InvokeOutcome =
  | { kind: 'result'; result: unknown }
  /** the handler threw or rejected */
  | { kind: 'error'; error: ErrorInfo }
  /** the invocation ran past the timeout; its instance was stopped */
  | { kind: 'timeout'; timeoutMs: number }
  /** the instance died (or could not start) before answering */
  | { kind: 'crashed'; error: ErrorInfo };

export type OutputListener = (line: string, stream: 'stdout' | 'stderr', instance: number) => void;

export interface WorkerPoolOptions {
  size: number;
  queueLimit: number;
  timeoutMs: number;
  init: Omit<WorkerInit, 'instance' | 'captureOutput'>;
  env: Record<string, string>;
  /** handler output line by line; without it, instances write to this process's stdout/stderr */
  onOutput?: OutputListener;
}

/** Every instance is busy and the queue is at its bound. */
export class QueueFullError extends Error {
  constructor(
    readonly instances: number,
    readonly queued: number,
  ) {
    super(`all ${instances} handler instances are busy and ${queued} requests are waiting`);
  }
}

interface Job {
  id: number;
  requestId: string;
  event: APIGatewayProxyEventV2;
  resolve(outcome: InvokeOutcome): void;
}

interface Instance {
  readonly number: number;
  readonly child: ChildProcess;
  /** the unfinished last line of each stream */
  readonly partial: { stdout: string; stderr: string };
  job?: Job;
  timer?: NodeJS.Timeout;
  ready: boolean;
}

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));
const TSX_LOADER = import.meta.resolve('tsx');

const crashed = (message: string): InvokeOutcome => ({
  kind: 'crashed',
  error: { name: 'Error', message },
});

/**
 * Handler instances in child processes, one invocation at a time each, like Lambda execution
 * environments: a slow inference holds one instance while the others keep serving. Requests wait
 * in a bounded FIFO queue; an instance that times out is killed, and one that times out or dies
 * is replaced by a fresh one (a new cold start). Processes rather than worker threads: a run stuck
 * in onnxruntime's native code can only be stopped with its process, and a worker thread
 * terminated under a run in flight aborted the whole local stack once the run completed.
 */
export class WorkerPool {
  private readonly instances = new Set<Instance>();
  private readonly idle: Instance[] = [];
  private readonly queue: Job[] = [];
  private nextJob = 1;
  private nextInstance = 1;
  private starting = 0;
  private closing = false;
  private lastInitError: ErrorInfo | undefined;

  constructor(private readonly options: WorkerPoolOptions) {}

  /** starts every instance and resolves once each has imported the handler */
  async start(): Promise<void> {
    const results = await Promise.allSettled(
      Array.from({ length: this.options.size }, () => this.spawn()),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) {
      await this.close();
      throw failed.reason;
    }
  }

  /** true when a new request would be refused right now */
  get full(): boolean {
    return this.idle.length === 0 && this.queue.length >= this.options.queueLimit;
  }

  invoke(requestId: string, event: APIGatewayProxyEventV2): Promise<InvokeOutcome> {
    if (this.closing) return Promise.resolve(crashed('the local API is shutting down'));
    if (this.full) throw new QueueFullError(this.instances.size, this.queue.length);
    return new Promise((resolve) => {
      const job: Job = { id: this.nextJob++, requestId, event, resolve };
      const instance = this.idle.shift();
      if (instance !== undefined) this.assign(instance, job);
      else {
        this.queue.push(job);
        if (this.instances.size + this.starting === 0) void this.replace();
      }
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.resolve(crashed('the local API is shutting down'));
    const stopping = [...this.instances].map((instance) => this.stop(instance));
    await Promise.all(stopping);
  }

  private spawn(): Promise<Instance> {
    const number = this.nextInstance++;
    const init: WorkerInit = { ...this.options.init, instance: number, captureOutput: true };
    const child = fork(INSTANCE, [JSON.stringify(init)], {
      execArgv: ['--import', TSX_LOADER],
      env: this.options.env,
      // structured clone, as worker messages were: no JSON round trip of the bodies
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const instance: Instance = {
      number,
      child,
      partial: { stdout: '', stderr: '' },
      ready: false,
    };
    // what native code writes straight to the file descriptors (JavaScript's output is captured)
    for (const stream of ['stdout', 'stderr'] as const) {
      const source = child[stream];
      if (source === null) continue;
      createInterface({ input: source }).on('line', (line) =>
        this.output(instance, [[stream, `${line}\n`]]),
      );
    }
    this.instances.add(instance);
    this.starting += 1;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (error?: ErrorInfo): void => {
        if (settled) return;
        settled = true;
        this.starting -= 1;
        if (error === undefined) {
          instance.ready = true;
          resolve(instance);
          return;
        }
        this.lastInitError = error;
        reject(new Error(`the handler could not start: ${error.message}`));
      };
      child.on('message', (message: FromWorker) => {
        if ('output' in message) this.output(instance, message.output);
        if (message.type === 'output') return;
        if (message.type === 'ready') {
          settle();
          this.next(instance);
        } else if (message.type === 'init-error') settle(message.error);
        else this.answered(instance, message);
      });
      child.on('error', (err) => {
        const error = { name: err.name, message: err.message };
        settle(error);
        this.lost(instance, error);
      });
      child.on('exit', (code, signal) => {
        this.endOutput(instance);
        const error = {
          name: 'Error',
          message:
            signal === null
              ? `handler instance exited with code ${code}`
              : `handler instance was killed by ${signal}`,
        };
        settle(error);
        this.lost(instance, error);
      });
    });
  }

  /** hands complete lines to `onOutput`, or writes the text where a child's output would go */
  private output(instance: Instance, chunks: readonly OutputChunk[]): void {
    const listener = this.options.onOutput;
    for (const [stream, text] of chunks) {
      if (listener === undefined) {
        process[stream].write(text);
        continue;
      }
      const lines = (instance.partial[stream] + text).split('\n');
      instance.partial[stream] = lines.pop() ?? '';
      for (const line of lines) listener(line, stream, instance.number);
    }
  }

  private endOutput(instance: Instance): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = instance.partial[stream];
      instance.partial[stream] = '';
      if (rest !== '') this.options.onOutput?.(rest, stream, instance.number);
    }
  }

  private assign(instance: Instance, job: Job): void {
    instance.job = job;
    instance.timer = setTimeout(() => this.timedOut(instance), this.options.timeoutMs);
    const message: ToWorker = {
      id: job.id,
      requestId: job.requestId,
      event: job.event,
      deadline: Date.now() + this.options.timeoutMs,
    };
    instance.child.send(message);
  }

  private answered(
    instance: Instance,
    message: Extract<FromWorker, { type: 'result' | 'error' }>,
  ): void {
    const job = instance.job;
    if (job === undefined || job.id !== message.id) return;
    clearTimeout(instance.timer);
    instance.job = undefined;
    job.resolve(
      message.type === 'result'
        ? { kind: 'result', result: message.result }
        : { kind: 'error', error: message.error },
    );
    this.next(instance);
  }

  private next(instance: Instance): void {
    if (this.closing || !this.instances.has(instance)) return;
    const job = this.queue.shift();
    if (job === undefined) this.idle.push(instance);
    else this.assign(instance, job);
  }

  private timedOut(instance: Instance): void {
    const job = instance.job;
    instance.job = undefined;
    job?.resolve({ kind: 'timeout', timeoutMs: this.options.timeoutMs });
    // A synchronous run() cannot be interrupted: kill the whole instance, as Lambda does.
    void this.stop(instance).then(() => this.replace());
  }

  /** an instance died on its own: fail its invocation and start another in its place */
  private lost(instance: Instance, error: ErrorInfo): void {
    if (!this.instances.delete(instance)) return;
    this.forget(instance);
    instance.job?.resolve({ kind: 'crashed', error });
    instance.job = undefined;
    if (instance.ready) void this.replace();
    else this.failQueueIfNoInstances();
  }

  private async stop(instance: Instance): Promise<void> {
    if (!this.instances.delete(instance)) return;
    this.forget(instance);
    const child = instance.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  private forget(instance: Instance): void {
    clearTimeout(instance.timer);
    const at = this.idle.indexOf(instance);
    if (at !== -1) this.idle.splice(at, 1);
  }

  private async replace(): Promise<void> {
    if (this.closing) return;
    await this.spawn().catch(() => this.failQueueIfNoInstances());
  }

  private failQueueIfNoInstances(): void {
    if (this.instances.size + this.starting > 0) return;
    const reason = this.lastInitError?.message ?? 'no handler instance is running';
    for (const job of this.queue.splice(0))
      job.resolve(crashed(`the handler could not start: ${reason}`));
  }
}
