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
  ObjectNotFoundError,
  ObjectTooLargeError,
  PreconditionFailedError,
  StorageUnavailableError,
} from './object-store.ts';
export {
  createS3Client,
  normalizeEtag,
  type S3ClientOptions,
  S3ObjectStore,
  type S3ObjectStoreOptions,
} from './s3-object-store.ts';
