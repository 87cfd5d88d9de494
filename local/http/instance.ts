import { parentPort, workerData } from 'node:worker_threads';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { lambdaContext } from '../lambda-context.ts';
import type { FromWorker, OutputChunk, ToWorker, WorkerInit } from './messages.ts';

/**
 * One handler instance, as Lambda runs one: the module is imported once (the init phase), then
 * invocations arrive one at a time.
 */
const port = parentPort;
if (port === null) throw new Error('local/http/worker.ts runs only as a worker thread');
const init = workerData as WorkerInit;
const send = (message: FromWorker): void => port.postMessage(message);

/**
 * The instance's stdout/stderr travel in its own messages: a worker's stdio streams post every
 * write and wait for the main thread to acknowledge it, which cost more than the inference on a
 * small model. Lines written during an invocation ride with its answer; the rest (init, timers,
 * lines before a long run()) go out once the event loop turns.
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

let handler: Handler;
try {
  const loaded: Record<string, unknown> = await import(init.handlerUrl);
  const candidate = loaded[init.exportName];
  if (typeof candidate !== 'function') {
    throw new TypeError(`${init.handlerUrl} has no function export named ${init.exportName}`);
  }
  handler = candidate as Handler;
  send({ type: 'ready' });
} catch (err) {
  flush();
  send({ type: 'init-error', error: describeError(err) });
  process.exit(1);
}

port.on('message', async (message: ToWorker) => {
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
});
