import * as ort from 'onnxruntime-node';
import { createSession } from '../../src/runtime/index.ts';
import { emfNamedModel } from '../support/forged-models.ts';

/**
 * Run in a child process by sessions.test.ts: loads the EMF-named model through the platform's
 * one session factory (validation bypassed, as if a name slipped through) and runs it on inputs
 * that fail and inputs that succeed, so the process's own stdout/stderr can be inspected.
 */
const session = await createSession(emfNamedModel('victim'));
for (const value of [9, 1, -20]) {
  try {
    await session.run({ x: new ort.Tensor('float32', Float32Array.of(value), [1]) });
    process.stdout.write(`ran ${value}\n`);
  } catch {
    process.stdout.write(`failed ${value}\n`);
  }
}
await session.release();
