import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/** `workerData` of a handler instance. */
export interface WorkerInit {
  handlerUrl: string;
  exportName: string;
  functionName: string;
  region: string;
  memoryMb: number;
  instance: number;
}

export interface InvokeMessage {
  id: number;
  requestId: string;
  event: APIGatewayProxyEventV2;
  /** epoch ms after which the invocation is stopped */
  deadline: number;
}

export type ToWorker = InvokeMessage;

export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; error: ErrorInfo }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; error: ErrorInfo };
