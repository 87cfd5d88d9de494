import { handler } from '../../functions/ingest/handler.ts';
import type { FromInstance, InvokeMessage } from './messages.ts';

/**
 * One ingest function instance in its own process, as Lambda runs one: the handler module is
 * loaded once, then invocations arrive one at a time over IPC. A process (not a worker thread)
 * so that an invocation stuck in onnxruntime's native code can still be stopped at its deadline.
 */
const send = (message: FromInstance): void => {
  process.send?.(message);
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
          ? { name: err.name, message: err.message }
          : { name: 'Error', message: String(err) },
    });
  }
});

// The parent going away (Ctrl-C on `npm start`) ends the instance too.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
