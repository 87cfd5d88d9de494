// Runs one Lambda invocation of a bundled handler in a process of its own, as the Lambda runtime
// would load it: `node invoke-bundle.mjs <asset folder> <event.json> <result.json>`.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [assetDir, eventFile, resultFile] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(join(assetDir, 'index.mjs')).href);
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'predict',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:predict',
  memoryLimitInMB: '2048',
  awsRequestId: 'bundle-test',
  logGroupName: '/aws/lambda/predict',
  logStreamName: 'bundle-test',
  getRemainingTimeInMillis: () => 15_000,
};
const result = await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context);
writeFileSync(resultFile, JSON.stringify(result));
