// Runs one Lambda invocation of a bundled handler in a process of its own, as the Lambda runtime
// would load it: `node invoke-bundle.mjs <asset folder> <event.json> <result.json>`.
// MAAS_INVOKE_BUDGET_MS is the time the handler is told it has (Lambda's remaining time):
// 15 s as deployed, more under an emulator that runs the same code 10 to 30 times slower.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [assetDir, eventFile, resultFile] = process.argv.slice(2);
const { handler } = await import(pathToFileURL(join(assetDir, 'index.mjs')).href);
const budgetMs = Number(process.env.MAAS_INVOKE_BUDGET_MS ?? 15_000);
const deadline = Date.now() + budgetMs;
const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'predict',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:predict',
  memoryLimitInMB: '2048',
  awsRequestId: 'bundle-test',
  logGroupName: '/aws/lambda/predict',
  logStreamName: 'bundle-test',
  getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
};
const result = await handler(JSON.parse(readFileSync(eventFile, 'utf8')), context);
writeFileSync(resultFile, JSON.stringify(result));
