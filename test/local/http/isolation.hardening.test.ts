import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../../src/storage/s3.ts';
import { inputLoopRequest } from '../../support/hostile-models.ts';
import { tinyModel } from '../../support/models.ts';
import { type StackProcess, startStackProcess } from '../../support/stack-process.ts';

const TIMEOUT_MS = 1500;
/** longer than either run below takes on its own, so a run left going would have finished */
const SETTLE_MS = 12_000;

/** the encoder request of the issue: INT64 ids and mask of shape [64, 512] */
const heavyEncoderRequest = (): string => {
  const count = 64 * 512;
  const ids = Array.from({ length: count }, (_, i) => 100 + (i % 900));
  return JSON.stringify({
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [64, 512], data: ids },
      { name: 'attention_mask', datatype: 'INT64', shape: [64, 512], data: ids.map(() => 1) },
    ],
  });
};
const IRIS = JSON.stringify({
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] }],
});

describe('a timed-out invocation ends only itself', () => {
  let stack: StackProcess;
  const post = (model: string, body: string) =>
    fetch(`${stack.api}/v2/models/${model}/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });

  beforeAll(async () => {
    stack = await startStackProcess({ env: { MAAS_INVOKE_TIMEOUT_MS: String(TIMEOUT_MS) } });
  }, 120_000);
  afterAll(async () => {
    await stack?.close();
  }, 30_000);

  it('answers 504 to a hanging model and to the heavy encoder request, then serves and ingests', async () => {
    const hang = await post('hang', inputLoopRequest(3_000_000));
    expect(hang.status).toBe(504);
    const heavy = await post('encoder', heavyEncoderRequest());
    expect(heavy.status).toBe(504);
    await sleep(SETTLE_MS);
    expect(stack.exited(), stack.output()).toBeUndefined();
    expect(stack.output()).not.toContain('terminate called');

    const iris = await post('iris', IRIS);
    expect(iris.status).toBe(200);
    expect((await post('hang', inputLoopRequest(10))).status).toBe(200);

    const client = createS3Client({
      endpoint: stack.env.AWS_ENDPOINT_URL_S3 ?? '',
      region: stack.env.AWS_REGION ?? 'us-east-1',
      credentials: {
        accessKeyId: stack.env.AWS_ACCESS_KEY_ID ?? '',
        secretAccessKey: stack.env.AWS_SECRET_ACCESS_KEY ?? '',
      },
    });
    await client.send(
      new PutObjectCommand({
        Bucket: stack.env.MAAS_BUCKET,
        Key: 'incoming/after/model.onnx',
        Body: tinyModel({ seed: 18 }),
      }),
    );
    client.destroy();
    const deadline = Date.now() + 90_000;
    while (!stack.ingested().some((r) => r.status === 'registered') && Date.now() < deadline) {
      expect(stack.exited(), stack.output()).toBeUndefined();
      await sleep(200);
    }
    expect(stack.ingested().map((r) => r.status)).toEqual(['registered']);
    const served = await post(
      'after',
      JSON.stringify({
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
      }),
    );
    expect(served.status).toBe(200);
  }, 180_000);
});
