import { MaasError } from '../errors/index.ts';

/** Bytes that protobuf cannot decode as an ONNX ModelProto. */
export class InvalidModelError extends MaasError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('InvalidModel', message, options);
  }
}

/** Why `validateModel` turned a model away; each is its own stable `code`. */
export const REJECTION_CODES = [
  'Empty',
  'NotOnnx',
  'Truncated',
  'NoGraph',
  'ExternalData',
  'DisallowedOp',
  'ShadowedOp',
  'TensorDataMismatch',
  'TooLarge',
  'TooManyNodes',
  'NestingTooDeep',
  'DimTooLarge',
  'DimOverflow',
  'TooManyElements',
  'UnsupportedIoType',
  'UnsupportedElementType',
  'ControlCharacterInName',
  'DuplicateName',
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

/** A model that will not be registered; the message says what was wrong and what to send. */
export class ModelRejectedError extends MaasError {
  declare readonly code: RejectionCode;
  readonly reason: RejectionCode;

  constructor(
    reason: RejectionCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(reason, message, options);
    this.reason = reason;
  }
}
