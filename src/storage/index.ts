export type {
  GetOptions,
  ObjectStore,
  PutOptions,
  StoredObject,
  StoredObjectHead,
} from './object-store.ts';
export {
  ObjectNotFoundError,
  PreconditionFailedError,
  StorageUnavailableError,
} from './object-store.ts';
export { S3ObjectStore, type S3ObjectStoreOptions } from './s3-object-store.ts';
