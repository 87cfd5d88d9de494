/**
 * The transport-neutral request and response the protocol core speaks. The Lambda adapter and the
 * tests translate to and from these; the core never sees an API Gateway event.
 */
export interface HttpRequest {
  method: string;
  /** decoded path without the query string, e.g. `/v2/models/iris/infer` */
  path: string;
  /** header names in lower case; repeated headers joined with `, ` */
  headers: Readonly<Record<string, string | undefined>>;
  query: Readonly<Record<string, string | undefined>>;
  body: Uint8Array | undefined;
  /** the platform's id for this request (API Gateway's requestId), echoed in logs and 500s */
  requestId: string;
  /**
   * epoch ms when the invocation serving the request is stopped (Lambda's remaining time, set by
   * the adapter); work that loops over model runs stops in time to answer
   */
  deadline?: number;
}

export interface HttpResponse {
  status: number;
  /** header names in lower case */
  headers: Record<string, string>;
  /** a string is UTF-8 text; a Uint8Array is binary (the adapter base64-encodes it) */
  body: string | Uint8Array;
}

export const JSON_CONTENT_TYPE = 'application/json';
export const BINARY_CONTENT_TYPE = 'application/octet-stream';
/** the binary tensor data extension's header: byte length of the JSON part of the body */
export const INFERENCE_HEADER_LENGTH = 'inference-header-content-length';

export const jsonResponse = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponse => ({
  status,
  headers: { 'content-type': JSON_CONTENT_TYPE, ...headers },
  body: JSON.stringify(body),
});
