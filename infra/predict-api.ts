import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  type CorsPreflightOptions,
  HttpApi,
  HttpMethod,
  HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { MaasFunction } from './maas-function.ts';
import type { ModelBucket } from './model-bucket.ts';
import type { AuthSettings, MaasSettings } from './settings.ts';

/**
 * The routes of the HTTP contract, by prefix: the handler itself answers 404 and 405 inside them,
 * exactly as the local stack does, so API Gateway only has to keep everything else out.
 */
export const PREDICT_ROUTES = ['/v2', '/v2/{proxy+}', '/v1/{proxy+}'] as const;

/** One JSON object per request: API Gateway's own view of it, beside the handler's logs. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTimeEpoch',
  ip: '$context.identity.sourceIp',
  caller: '$context.identity.userArn',
  jwtSubject: '$context.authorizer.claims.sub',
  method: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  protocol: '$context.protocol',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  error: '$context.error.message',
  integrationError: '$context.integrationErrorMessage',
} as const;

export interface PredictApiProps {
  readonly settings: MaasSettings;
  readonly modelBucket: ModelBucket;
  /** variables predict reads through `src/config` */
  readonly environment: Readonly<Record<string, string>>;
}

/**
 * The inference endpoint: the predict function behind an HTTP API (payload 2.0) whose every route
 * requires IAM (SigV4) or JWT authorisation, with stage throttling and JSON access logs.
 */
export class PredictApi extends Construct {
  readonly handler: MaasFunction;
  /** what the API invokes: the function, or its `live` alias when instances are provisioned */
  readonly target: IFunction;
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: PredictApiProps) {
    super(scope, id);
    const { settings } = props;
    const removalPolicy =
      settings.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.handler = new MaasFunction(this, 'Predict', {
      name: 'predict',
      description: 'Open Inference Protocol V2 inference on registered ONNX models',
      settings,
      memoryMb: settings.predict.memoryMb,
      timeoutSeconds: settings.predict.timeoutSeconds,
      onnxRuntime: true,
      // its cold start is a request's latency: no source map parsed at import
      sourceMaps: false,
      environment: {
        ...props.environment,
        ...(settings.predict.preloadModels.length === 0
          ? {}
          : { MAAS_PRELOAD_MODELS: settings.predict.preloadModels.join(',') }),
      },
      ...(settings.predict.reservedConcurrency === undefined
        ? {}
        : { reservedConcurrency: settings.predict.reservedConcurrency }),
    });
    props.modelBucket.grantPredict(this.handler.function);

    this.target =
      settings.predict.provisionedConcurrency > 0
        ? this.handler.function.addAlias('live', {
            provisionedConcurrentExecutions: settings.predict.provisionedConcurrency,
          })
        : this.handler.function;

    this.api = new HttpApi(this, 'Api', {
      description: 'onnx-maas inference (Open Inference Protocol V2)',
      createDefaultStage: false,
      defaultAuthorizer: authorizer(settings.auth),
      ...(settings.corsOrigins.length === 0
        ? {}
        : { corsPreflight: corsPreflight(settings.corsOrigins, settings.auth) }),
    });

    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: settings.logRetentionDays,
      removalPolicy,
    });
    this.stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: settings.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    const integration = new HttpLambdaIntegration('Predict', this.target, {
      // API Gateway answers 503 itself past this; one second more than the function's own limit
      // lets the function's timeout (and its log line) come first.
      timeout: Duration.seconds(Math.min(30, settings.predict.timeoutSeconds + 1)),
    });
    for (const path of PREDICT_ROUTES) {
      this.api.addRoutes({ path, methods: [HttpMethod.ANY], integration });
    }
  }

  /** The base URL clients call (`…/v2/models/{m}/infer`). */
  get url(): string {
    return this.stage.url;
  }
}

/** Headers a browser client sends: the bearer token, JSON or binary bodies, and SigV4's own. */
export const CORS_ALLOW_HEADERS = [
  'authorization',
  'content-type',
  'inference-header-content-length',
] as const;
const SIGV4_HEADERS = ['x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'] as const;

/**
 * API Gateway answers the preflight itself (OPTIONS needs no authorisation) and adds the
 * `access-control-*` headers to every response of the listed origins.
 */
const corsPreflight = (origins: readonly string[], auth: AuthSettings): CorsPreflightOptions => ({
  allowOrigins: [...origins],
  allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST, CorsHttpMethod.OPTIONS],
  allowHeaders: [...CORS_ALLOW_HEADERS, ...(auth.mode === 'iam' ? SIGV4_HEADERS : [])],
  exposeHeaders: ['x-maas-model-version', 'x-maas-variant', 'inference-header-content-length'],
  maxAge: Duration.hours(1),
});

const authorizer = (auth: AuthSettings): IHttpRouteAuthorizer =>
  auth.mode === 'iam'
    ? new HttpIamAuthorizer()
    : new HttpJwtAuthorizer('Jwt', auth.issuer, { jwtAudience: [...auth.audience] });
