export {
  createS3Client,
  type S3ClientOptions,
  S3ObjectStore,
  type S3ObjectStoreOptions,
} from './s3-object-store.ts';
