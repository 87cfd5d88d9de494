import type { APIGatewayProxyEventV2 } from 'aws-lambda';

/** `workerData` of a handler instance. */
export interface WorkerInit {
  handlerUrl: string;
  exportName: string;
  functionName: string;
  region: string;
  memoryMb: number;
  instance: number;
  /** stdout/stderr come back in messages (`output`) rather than through the worker's stdio */
  captureOutput: boolean;
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

/** what the instance wrote to stdout/stderr since its last message, in order */
export type OutputChunk = readonly [stream: 'stdout' | 'stderr', text: string];

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; error: ErrorInfo }
  | { type: 'output'; output: OutputChunk[] }
  | { type: 'result'; id: number; result: unknown; output: OutputChunk[] }
  | { type: 'error'; id: number; error: ErrorInfo; output: OutputChunk[] };
