import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** An HTTP request as the local API read it, before it becomes a Lambda event. */
export interface IncomingRequest {
  method: string;
  /** path and query as sent (`req.url`) */
  url: string;
  /** `req.rawHeaders`: name, value, name, value... */
  rawHeaders: readonly string[];
  body: Buffer;
  sourceIp: string;
  requestId: string;
  receivedAt: Date;
}

export interface OutgoingResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

const TEXT_TYPES = [
  /^text\//,
  /[/+]json\b/,
  /[/+]xml\b/,
  /\/javascript\b/,
  /\/x-www-form-urlencoded\b/,
];
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** API Gateway passes text bodies as they are and base64-encodes everything else. */
const isText = (contentType: string | undefined, body: Buffer): boolean => {
  if (
    contentType === undefined ||
    !TEXT_TYPES.some((type) => type.test(contentType.toLowerCase()))
  ) {
    return false;
  }
  try {
    utf8.decode(body);
    return true;
  } catch {
    return false;
  }
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** `12/Mar/2020:19:03:58 +0000`, the format of `requestContext.time` */
const clfTime = (at: Date): string =>
  `${two(at.getUTCDate())}/${MONTHS[at.getUTCMonth()]}/${at.getUTCFullYear()}:` +
  `${two(at.getUTCHours())}:${two(at.getUTCMinutes())}:${two(at.getUTCSeconds())} +0000`;

/** Duplicate headers and query parameters are joined with commas, as payload format 2.0 does. */
const joined = (pairs: Iterable<[string, string]>): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const existing = out[name];
    out[name] = existing === undefined ? value : `${existing},${value}`;
  }
  return out;
};

function* headerPairs(rawHeaders: readonly string[]): Generator<[string, string]> {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    yield [(rawHeaders[i] ?? '').toLowerCase(), rawHeaders[i + 1] ?? ''];
  }
}

/** The API Gateway HTTP API (payload format 2.0) event for a request on the `$default` route. */
export const toEvent = (request: IncomingRequest): APIGatewayProxyEventV2 => {
  const queryAt = request.url.indexOf('?');
  const rawPath = queryAt === -1 ? request.url : request.url.slice(0, queryAt);
  const rawQueryString = queryAt === -1 ? '' : request.url.slice(queryAt + 1);
  const headers = joined(headerPairs(request.rawHeaders));
  const query = joined(new URLSearchParams(rawQueryString));
  const host = headers.host ?? 'localhost';
  // API Gateway appends the client to X-Forwarded-For and says how it was reached.
  headers['x-forwarded-for'] =
    headers['x-forwarded-for'] === undefined
      ? request.sourceIp
      : `${headers['x-forwarded-for']}, ${request.sourceIp}`;
  headers['x-forwarded-proto'] ??= 'http';
  headers['x-forwarded-port'] ??= /:(\d+)$/.exec(host)?.[1] ?? '80';
  const domainName = host.replace(/:\d+$/, '');
  const hasBody = request.body.byteLength > 0;
  const text = hasBody && isText(headers['content-type'], request.body);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    headers,
    ...(Object.keys(query).length === 0 ? {} : { queryStringParameters: query }),
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method: request.method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: request.sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: request.requestId,
      routeKey: '$default',
      stage: '$default',
      time: clfTime(request.receivedAt),
      timeEpoch: request.receivedAt.getTime(),
    },
    ...(hasBody ? { body: request.body.toString(text ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: hasBody && !text,
  };
};

const isStructured = (result: unknown): result is APIGatewayProxyStructuredResultV2 =>
  typeof result === 'object' && result !== null && 'statusCode' in result;

/**
 * The HTTP response API Gateway makes of a handler's result: a structured result as given; any
 * other value (a string, an object without `statusCode`) as a 200 JSON body.
 */
export const fromResult = (result: unknown, requestId: string): OutgoingResponse => {
  if (!isStructured(result)) {
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    return json(200, body, requestId);
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    headers[name.toLowerCase()] = String(value);
  }
  if (result.cookies !== undefined && result.cookies.length > 0) {
    headers['set-cookie'] = result.cookies;
  }
  headers['apigw-requestid'] = requestId;
  const body = Buffer.from(result.body ?? '', result.isBase64Encoded === true ? 'base64' : 'utf8');
  return { statusCode: result.statusCode ?? 200, headers, body };
};

/** A JSON answer of the local API itself (throttled, body too large, handler crashed...). */
export const json = (statusCode: number, body: string, requestId: string): OutgoingResponse => ({
  statusCode,
  headers: { 'content-type': 'application/json', 'apigw-requestid': requestId },
  body: Buffer.from(body),
});

export const errorResponse = (
  statusCode: number,
  message: string,
  requestId: string,
): OutgoingResponse => json(statusCode, JSON.stringify({ error: message }), requestId);
