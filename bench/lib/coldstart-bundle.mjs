// One cold start of the bundled predict handler: a fresh process imports the asset's index.mjs
// (Lambda's init), invokes it once and prints when the answer was ready, as epoch milliseconds.
//   node coldstart-bundle.mjs <asset folder> <event.json>
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [assetDir, eventFile] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(join(assetDir, 'index.mjs')).href);
const initAt = performance.timeOrigin + performance.now();
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'predict',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:predict',
  memoryLimitInMB: '2048',
  awsRequestId: 'coldstart',
  logGroupName: '/aws/lambda/predict',
  logStreamName: 'coldstart',
  getRemainingTimeInMillis: () => 15_000,
};
const invokedAt = performance.timeOrigin + performance.now();
const result = await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context);
const answeredAt = performance.timeOrigin + performance.now();
process.stdout.write(
  `${JSON.stringify({ answeredAt, initAt, invokedAt, status: result.statusCode })}\n`,
);
process.exit(0);
