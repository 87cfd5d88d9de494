import type { Context } from 'aws-lambda';

export interface LambdaContextOptions {
  requestId: string;
  /** @default 'predict' */
  functionName?: string;
  /** @default 'us-east-1' */
  region?: string;
  /** @default 1769 (one full vCPU in Lambda) */
  memoryMb?: number;
  /** @default 'local' */
  logStreamName?: string;
  /** epoch ms when the invocation times out; @default 30 s from each call to getRemainingTimeInMillis */
  deadline?: number;
}

/**
 * The Lambda context a handler receives, for invocations outside Lambda: the local stack's
 * handler instances, the benchmarks and the tests all call the real handlers with one of these.
 */
export const lambdaContext = (options: LambdaContextOptions): Context => {
  const { requestId, functionName = 'predict', region = 'us-east-1', deadline } = options;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: String(options.memoryMb ?? 1769),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: options.logStreamName ?? 'local',
    getRemainingTimeInMillis: () =>
      deadline === undefined ? 30_000 : Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
};
