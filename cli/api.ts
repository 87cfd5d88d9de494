import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest as SignableRequest } from '@smithy/types';
import { errorMessage, MaasError } from '../src/errors/index.ts';
import { type StackTarget, type Target, TOKEN_VARIABLE } from './target.ts';

/** API Gateway gives up on an integration after 30 s; a cold load of a large model fits within. */
const REQUEST_TIMEOUT_MS = 60_000;
/** the service name IAM authorization of API Gateway checks signatures against */
const SIGNING_SERVICE = 'execute-api';

export interface ApiRequest {
  method: 'GET' | 'POST';
  /** from the API root, e.g. `/v2/models/iris/infer` */
  path: string;
  body?: string;
  contentType?: string;
}

export interface ApiResponse {
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

/** The HTTP API did not answer: nothing listens there, or the network is in the way. */
export class ApiUnreachableError extends MaasError {
  constructor(target: Target, cause: unknown) {
    const url = target.apiUrl;
    const why = reasonOf(cause);
    super(
      'ApiUnreachable',
      target.kind === 'local'
        ? `cannot reach the local API at ${url} (${why}): is \`npm start\` running? (set PORT when it listens on another port)`
        : `cannot reach the API of stack ${target.stackName} at ${url} (${why}): is the stack in ${target.file} still deployed?`,
      { cause, details: { url } },
    );
  }
}

/** No AWS credentials to sign with: the default chain found none. */
export class MissingCredentialsError extends MaasError {
  constructor(target: StackTarget, cause: unknown) {
    super(
      'MissingCredentials',
      `no AWS credentials to sign requests to stack ${target.stackName} (${errorMessage(cause)}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run \`aws sso login\``,
      { cause },
    );
  }
}

/** The API answered 4xx or 5xx; the message carries its JSON error as sent. */
export class ApiErrorResponse extends MaasError {
  readonly status: number;
  constructor(request: ApiRequest, response: ApiResponse, target?: Target) {
    const { status, statusText } = response;
    const body = new TextDecoder().decode(response.body).trim() || '(empty body)';
    const retryAfter = response.headers.get('retry-after');
    super(
      'ApiError',
      `${request.method} ${request.path} answered ${status}${statusText === '' ? '' : ` ${statusText}`}: ${body}${retryAfter === null ? '' : ` (retry after ${retryAfter} s)`}${authHint(status, target)}`,
      { details: { status, path: request.path } },
    );
    this.status = status;
  }
}

/**
 * API Gateway answers 401 when a JWT authorizer finds no valid token and 403 when IAM refuses a
 * signature: each hint names what to send instead.
 */
function authHint(status: number, target: Target | undefined): string {
  if (target?.kind !== 'stack') return '';
  if (status === 401) {
    return target.token === undefined
      ? `; the API of stack ${target.stackName} may authorize with JWT (maas:auth=jwt): set ${TOKEN_VARIABLE} to a token from its issuer`
      : `; the token in ${TOKEN_VARIABLE} was refused: check its issuer, audience and expiry`;
  }
  if (status === 403) {
    return target.token === undefined
      ? `; the signing identity needs execute-api:Invoke on the API of stack ${target.stackName}`
      : `; the API of stack ${target.stackName} may authorize with IAM (the default): unset ${TOKEN_VARIABLE} to sign with AWS credentials`;
  }
  return '';
}

function reasonOf(cause: unknown): string {
  if (cause instanceof Error && cause.name === 'TimeoutError') {
    return `no answer in ${REQUEST_TIMEOUT_MS / 1000} s`;
  }
  // fetch reports every network failure as "fetch failed"; the reason is in the cause.
  const inner = cause instanceof Error ? cause.cause : undefined;
  const code = (inner as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return code;
  return errorMessage(inner ?? cause);
}

const joinUrl = (base: string, path: string): URL => new URL(`${base.replace(/\/+$/, '')}${path}`);

/**
 * A deployed API authorizes with IAM: the request is signed with SigV4 for `execute-api`, with
 * credentials from the default chain (environment, profile, SSO, instance role).
 */
async function signedHeaders(
  target: StackTarget,
  url: URL,
  request: ApiRequest,
  headers: Record<string, string>,
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    service: SIGNING_SERVICE,
    region: target.region,
    credentials: defaultProvider(),
    sha256: Sha256,
  });
  const signable: SignableRequest = {
    method: request.method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === '' ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: {},
    headers: { ...headers, host: url.host },
    ...(request.body === undefined ? {} : { body: request.body }),
  };
  let signed: SignableRequest;
  try {
    signed = await signer.sign(signable);
  } catch (err) {
    throw new MissingCredentialsError(target, err);
  }
  // fetch sets Host itself, to the same url.host that was signed.
  const { host: _host, ...rest } = signed.headers;
  return rest;
}

/** One request to the target's HTTP API; any status comes back, only a failed exchange throws. */
export async function callApi(target: Target, request: ApiRequest): Promise<ApiResponse> {
  const url = joinUrl(target.apiUrl, request.path);
  const base: Record<string, string> =
    request.contentType === undefined ? {} : { 'content-type': request.contentType };
  const headers =
    target.kind === 'local'
      ? base
      : target.token !== undefined
        ? { ...base, authorization: `Bearer ${target.token}` }
        : await signedHeaders(target, url, request, base);
  let response: Response;
  try {
    response = await fetch(url, {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body: new Uint8Array(await response.arrayBuffer()),
    };
  } catch (err) {
    throw new ApiUnreachableError(target, err);
  }
}

/** The response, or ApiErrorResponse for 4xx and 5xx. */
export async function callApiOk(target: Target, request: ApiRequest): Promise<ApiResponse> {
  const response = await callApi(target, request);
  if (response.status >= 400) throw new ApiErrorResponse(request, response, target);
  return response;
}
