import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import { createPredictHandler } from '../../../functions/predict/handler.ts';
import { lambdaContext } from '../../../local/lambda-context.ts';
import { MemoryMetricsSink } from '../../../src/metrics/index.ts';
import { createPredictApp, type PredictApp } from '../../../src/serve/index.ts';
import { createFuzzProvider } from './models.ts';

export interface FuzzTargets {
  /** the protocol app over real onnxruntime sessions, with the default limits */
  app: PredictApp;
  /** the Lambda handler over the same sessions, as API Gateway invokes it */
  invoke(event: APIGatewayProxyEventV2): Promise<unknown>;
  /** what the app and the handler emitted */
  metrics: MemoryMetricsSink;
  close(): Promise<void>;
}

/** The two doors a client's bytes come through, over one set of real sessions. */
export const createFuzzTargets = async (): Promise<FuzzTargets> => {
  // Runs refused on purpose (ids past a table, shapes that do not broadcast) are answered with a
  // 400; onnxruntime's own log of each would only bury the fuzzer's report.
  ort.env.logLevel = 'fatal';
  const provider = await createFuzzProvider();
  const metrics = new MemoryMetricsSink();
  const app = createPredictApp({ provider, metrics });
  const handler = createPredictHandler({
    provider,
    metrics,
    limits: {},
    logger: new Logger({ serviceName: 'maas-predict-fuzz', logLevel: 'SILENT' }),
  });
  return {
    app,
    invoke: (event) =>
      handler(
        event,
        lambdaContext({ requestId: event.requestContext.requestId, logStreamName: 'fuzz' }),
      ),
    metrics,
    close: () => provider.release(),
  };
};
