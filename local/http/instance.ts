import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { lambdaContext } from '../lambda-context.ts';
import type { FromWorker, OutputChunk, ToWorker, WorkerInit } from './messages.ts';

/**
 * One handler instance, as Lambda runs one: the module is imported once (the init phase), then
 * invocations arrive one at a time over IPC. A process of its own, not a worker thread: an
 * onnxruntime run cannot be interrupted, and a worker terminated under a run in flight aborts
 * the whole process (the local S3, API, guard and ingest with it) when the run completes; a
 * process is killed cleanly, as Lambda stops an execution environment.
 */
if (process.send === undefined)
  throw new Error('local/http/instance.ts runs only as a child process');
const init = JSON.parse(process.argv[2] ?? '{}') as WorkerInit;
const send = (message: FromWorker): void => {
  process.send?.(message);
};

/**
 * The instance's stdout/stderr (what JavaScript writes) travel in its own messages, so that the
 * lines written during an invocation (its EMF metrics) reach the parent with its answer, never
 * after it; the rest (init, timers, lines before a long run()) go out once the event loop turns.
 * What native code writes to the file descriptors arrives through the pipes.
 */
let output: OutputChunk[] = [];
let flushScheduled = false;
const takeOutput = (): OutputChunk[] => {
  const taken = output;
  output = [];
  return taken;
};
const flush = (): void => {
  flushScheduled = false;
  if (output.length > 0) send({ type: 'output', output: takeOutput() });
};
const capture = (stream: NodeJS.WriteStream, name: OutputChunk[0]): void => {
  stream.write = ((
    chunk: string | Uint8Array,
    encoding?: BufferEncoding | ((err?: Error | null) => void),
    callback?: (err?: Error | null) => void,
  ): boolean => {
    const text =
      typeof chunk === 'string'
        ? chunk
        : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
    output.push([name, text]);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
    const done = typeof encoding === 'function' ? encoding : callback;
    if (done !== undefined) process.nextTick(done);
    return true;
  }) as typeof stream.write;
};
if (init.captureOutput) {
  capture(process.stdout, 'stdout');
  capture(process.stderr, 'stderr');
}

type Handler = (event: APIGatewayProxyEventV2, context: Context) => Promise<unknown>;

const describeError = (err: unknown): { name: string; message: string; stack?: string } =>
  err instanceof Error
    ? {
        name: err.name,
        message: err.message,
        ...(err.stack === undefined ? {} : { stack: err.stack }),
      }
    : { name: 'Error', message: String(err) };

const load = async (): Promise<Handler | undefined> => {
  try {
    const loaded: Record<string, unknown> = await import(init.handlerUrl);
    const candidate = loaded[init.exportName];
    if (typeof candidate !== 'function') {
      throw new TypeError(`${init.handlerUrl} has no function export named ${init.exportName}`);
    }
    return candidate as Handler;
  } catch (err) {
    flush();
    // exit once the message is out: IPC writes are asynchronous
    process.send?.({ type: 'init-error', error: describeError(err) } satisfies FromWorker, () =>
      process.exit(1),
    );
    return undefined;
  }
};

const handler = await load();
if (handler !== undefined) {
  process.on('message', (message: ToWorker) => void invoke(handler, message));
  send({ type: 'ready' });
}

async function invoke(handler: Handler, message: ToWorker): Promise<void> {
  try {
    const result = await handler(
      message.event,
      lambdaContext({
        requestId: message.requestId,
        deadline: message.deadline,
        functionName: init.functionName,
        region: init.region,
        memoryMb: init.memoryMb,
        logStreamName: `local/instance-${init.instance}`,
      }),
    );
    send({ type: 'result', id: message.id, result, output: takeOutput() });
  } catch (err) {
    // Lambda logs an invocation error to the function's log before API Gateway answers 500.
    console.error(`ERROR Invoke Error ${message.requestId}`, err);
    send({ type: 'error', id: message.id, error: describeError(err), output: takeOutput() });
  }
}

// The parent going away (Ctrl-C on `npm start`, a crashed test) ends the instance too.
process.on('disconnect', () => process.exit(0));
