// The floor: the model's bytes from a local file, InferenceSession.create, run — no storage, no
// HTTP, no verification. Prints when the answer was ready, as epoch milliseconds.
//   node coldstart-floor.mjs <model.onnx> <feeds.json> [optimization level]
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [file, feedsFile, level] = process.argv.slice(2);
const bytes = readFileSync(file);
const session = await ort.InferenceSession.create(
  bytes,
  level === undefined ? {} : { graphOptimizationLevel: level },
);
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
