import type { S3Event } from 'aws-lambda';
import type { IngestResult } from '../../src/ingest/index.ts';

export interface InvokeMessage {
  id: number;
  event: S3Event;
  /** epoch ms at which the invocation is stopped */
  deadline: number;
}

export interface ErrorInfo {
  name: string;
  message: string;
  /** epoch ms before which a retry is pointless: another holder's lease on the upload */
  retryAt?: number;
}

export type FromInstance =
  | { type: 'ready' }
  | { type: 'result'; id: number; results: IngestResult[] }
  | { type: 'error'; id: number; error: ErrorInfo };
