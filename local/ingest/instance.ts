import { handler } from '../../functions/ingest/handler.ts';
import { IngestInProgressError } from '../../src/ingest/index.ts';
import type { FromInstance, InvokeMessage } from './messages.ts';

/**
 * One ingest function instance in its own process, as Lambda runs one: the handler module is
 * loaded once, then invocations arrive one at a time over IPC. A process (not a worker thread)
 * so that an invocation stuck in onnxruntime's native code can still be stopped at its deadline.
 */
const send = (message: FromInstance): void => {
  process.send?.(message);
};

/** When the upload is held by a lease (a holder that may have died), when that lease ends. */
const leaseEnd = (err: Error): { retryAt?: number } => {
  const until = err instanceof IngestInProgressError ? Date.parse(String(err.details.until)) : NaN;
  return Number.isFinite(until) ? { retryAt: until } : {};
};

process.on('message', async (message: InvokeMessage) => {
  try {
    const results = await handler(message.event, {
      getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    });
    send({ type: 'result', id: message.id, results });
  } catch (err) {
    console.error('ERROR Invoke Error', err);
    send({
      type: 'error',
      id: message.id,
      error:
        err instanceof Error
          ? { name: err.name, message: err.message, ...leaseEnd(err) }
          : { name: 'Error', message: String(err) },
    });
  }
});

// The parent going away (Ctrl-C on `npm start`) ends the instance too.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
