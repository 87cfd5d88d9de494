/**
 * The object store's interface and errors; the S3 implementation (which loads the AWS SDK) is
 * `./s3.ts`, so code that only reads records or types never loads a client.
 */
export type {
  GetLargeOptions,
  GetOptions,
  ListOptions,
  ObjectStore,
  PutOptions,
  ReadIntoOptions,
  ReadIntoResult,
  StoredObject,
  StoredObjectHead,
} from './object-store.ts';
export {
  normalizeEtag,
  ObjectNotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StorageUnavailableError,
} from './object-store.ts';
