import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type ExplainSettings, explainSettingsFromEnv } from '../../src/explain/index.ts';
import { type MetricsSink, PowertoolsMetricsSink } from '../../src/metrics/index.ts';
import {
  type HttpRequest,
  type HttpResponse,
  limitsFromEnv,
  type ProtocolLimits,
  toHttpResponse,
} from '../../src/protocol/index.ts';
import { createRuntimeFromEnv, type ModelProvider } from '../../src/runtime/index.ts';
import {
  createPredictApp,
  type RequestRecord,
  type ShadowSettings,
  shadowFromEnv,
} from '../../src/serve/index.ts';

/** API Gateway HTTP API (payload 2.0) event → the protocol's request. */
export const toHttpRequest = (event: APIGatewayProxyEventV2): HttpRequest => ({
  method: event.requestContext.http.method,
  path: event.rawPath,
  headers: event.headers ?? {},
  query: event.queryStringParameters ?? {},
  body:
    event.body === undefined
      ? undefined
      : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8'),
  requestId: event.requestContext.requestId,
});

/** The protocol's response → payload 2.0 result; binary bodies travel base64-encoded. */
export const toApiGatewayResult = (res: HttpResponse): APIGatewayProxyStructuredResultV2 =>
  typeof res.body === 'string'
    ? { statusCode: res.status, headers: res.headers, body: res.body, isBase64Encoded: false }
    : {
        statusCode: res.status,
        headers: res.headers,
        body: Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength).toString(
          'base64',
        ),
        isBase64Encoded: true,
      };

export interface PredictHandlerOptions {
  /** default: the runtime over the model bucket, configured from the environment */
  provider?: ModelProvider;
  logger?: Logger;
  /** default: EMF through Powertools Metrics */
  metrics?: MetricsSink;
  /** default: DEFAULT_LIMITS overridden by MAAS_MAX_* variables */
  limits?: Partial<ProtocolLimits>;
  /** default: EXPLAIN_DEFAULTS overridden by MAAS_EXPLAIN* variables */
  explain?: ExplainSettings;
  /** default: `MAAS_SHADOW_SHARE` and the guard's watch window from the environment */
  shadow?: ShadowSettings;
}

const logRequest = (logger: Logger, { error, ...record }: RequestRecord): void => {
  if (record.status >= 500) logger.error('request failed', { ...record, error: error as Error });
  else logger.info('request', { ...record });
};

/** Builds the handler and its app once, at cold start; invocations only translate and call. */
export const createPredictHandler = (options: PredictHandlerOptions = {}) => {
  const logger = options.logger ?? new Logger({ serviceName: 'maas-predict' });
  const provider =
    options.provider ??
    createRuntimeFromEnv({
      hooks: { onModelLoad: (load) => logger.info('model loaded', { ...load }) },
    });
  const app = createPredictApp({
    provider,
    metrics: options.metrics ?? new PowertoolsMetricsSink(),
    limits: options.limits ?? limitsFromEnv(),
    explain: options.explain ?? explainSettingsFromEnv(),
    shadow: options.shadow ?? shadowFromEnv(),
    onRequest: (record) => logRequest(logger, record),
  });
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event, context) => {
      // The app bounds long work (explanations) by the invocation's remaining time, so they
      // answer before Lambda stops the function.
      const request = {
        ...toHttpRequest(event),
        deadline: Date.now() + context.getRemainingTimeInMillis(),
      };
      try {
        return toApiGatewayResult(await app(request));
      } catch (err) {
        // The app answers every failure itself; reaching here means logging or metrics broke,
        // and the client still gets a JSON 500 rather than API Gateway's bare one.
        logger.error('request failed outside the app', {
          requestId: request.requestId,
          error: err as Error,
        });
        return toApiGatewayResult(toHttpResponse(err, request.requestId));
      }
    });
};

export const handler = createPredictHandler();
