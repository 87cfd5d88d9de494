// What a user writes by hand: S3 GetObject of the model, InferenceSession.create, run. Prints
// when the answer was ready, as epoch milliseconds.
//   node coldstart-bare.mjs <bucket> <key> <feeds.json>
import { readFileSync } from 'node:fs';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';

const [bucket, key, feedsFile] = process.argv.slice(2);
const s3 = new S3Client({
  forcePathStyle: true,
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
const bytes = await object.Body.transformToByteArray();
const session = await ort.InferenceSession.create(bytes);
const feeds = Object.fromEntries(
  Object.entries(JSON.parse(readFileSync(feedsFile, 'utf8'))).map(([name, t]) => [
    name,
    new ort.Tensor(
      t.type,
      t.type === 'int64' ? BigInt64Array.from(t.data.map(BigInt)) : Float32Array.from(t.data),
      t.dims,
    ),
  ]),
);
const out = await session.run(feeds);
const answeredAt = performance.timeOrigin + performance.now();
process.stdout.write(`${JSON.stringify({ answeredAt, outputs: Object.keys(out).length })}\n`);
process.exit(0);
