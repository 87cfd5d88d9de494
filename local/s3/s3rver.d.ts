/** The part of s3rver 3.7.1 the local stack uses (the package ships no types). */
declare module 's3rver' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';
  import type { AddressInfo } from 'node:net';

  export interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Uint8Array)[] }[];
  }

  /** what `event` carries: one S3-notification-shaped record, keys not URL-encoded */
  export interface S3rverEvent {
    Records: {
      eventName: string;
      eventTime: string;
      requestParameters: { sourceIPAddress: string };
      s3: {
        bucket: { name: string };
        object: { key: string; size?: number; eTag?: string; sequencer: string };
      };
    }[];
  }

  export interface S3rverStore {
    /** throws (ENOENT) when the object does not exist; `etag` is quoted */
    getMetadata(
      bucket: string,
      key: string,
    ): Promise<{ etag: string; 'content-length': number } & Record<string, unknown>>;
  }

  export default class S3rver extends EventEmitter {
    constructor(options: S3rverOptions);
    readonly store: S3rverStore;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
    /** creates the `configureBuckets` of the options (what `run` does before it listens) */
    configureBuckets(): Promise<void>;
    /** the Koa request listener (s3rver is a Koa application) */
    callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
    on(event: 'event', listener: (event: S3rverEvent) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
