import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { fromResult, toEvent } from '../../local/http/index.ts';
import { lambdaContext } from '../../local/lambda-context.ts';
import type { HttpResponse } from '../../src/protocol/index.ts';

export interface Invocation {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

let invocations = 0;

/**
 * Invokes a Lambda handler the way API Gateway does: the request becomes a payload 2.0 event
 * (binary bodies base64-encoded), the result becomes the HTTP response the client sees.
 */
export async function invoke(
  handler: Handler,
  request: Invocation,
): Promise<HttpResponse & { requestId: string }> {
  const requestId = `req-${++invocations}`;
  const rawHeaders = Object.entries({ host: 'api.test', ...request.headers }).flat();
  const event = toEvent({
    method: request.method,
    url: request.path,
    rawHeaders,
    body: Buffer.from(request.body ?? ''),
    sourceIp: '127.0.0.1',
    requestId,
    receivedAt: new Date(),
  });
  const out = fromResult(
    await handler(
      event,
      lambdaContext({ requestId: `lambda-${requestId}`, logStreamName: 'test' }),
    ),
    requestId,
  );
  const headers = Object.fromEntries(Object.entries(out.headers).map(([k, v]) => [k, String(v)]));
  const text = headers['content-type'] === 'application/json';
  return {
    status: out.statusCode,
    headers,
    body: text ? out.body.toString('utf8') : new Uint8Array(out.body),
    requestId,
  };
}
