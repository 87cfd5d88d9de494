import { MaasError } from '../errors/index.ts';

export class InvalidModelNameError extends MaasError {
  constructor(readonly modelName: string) {
    super(
      'InvalidModelName',
      `model name ${JSON.stringify(modelName)} is not valid: use 1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or a digit`,
      { details: { model: modelName } },
    );
  }
}

export class ModelNotFoundError extends MaasError {
  constructor(readonly model: string) {
    super(
      'ModelNotFound',
      `model "${model}" does not exist; list the models with GET /v2/models or \`maas models\``,
      { details: { model } },
    );
  }
}

export class VersionNotFoundError extends MaasError {
  constructor(
    readonly model: string,
    readonly version: number,
    what = `version ${version} of model "${model}" does not exist`,
  ) {
    super('VersionNotFound', `${what}; list the versions with \`maas versions ${model}\``, {
      details: { model, version },
    });
  }
}

/** Stored bytes differ from what the manifest recorded: never load them. */
export class IntegrityError extends MaasError {
  constructor(key: string, message: string, details: Record<string, unknown> = {}) {
    super('IntegrityError', `${key}: ${message}`, { details: { key, ...details } });
  }
}

/**
 * A stored registry record is not the JSON the registry writes (truncated, hand-edited, naming
 * another version's bytes): that model cannot be served until the object is restored.
 */
export class CorruptRecordError extends MaasError {
  constructor(
    readonly key: string,
    cause: unknown,
    context: { model?: string; version?: number | undefined; problems?: readonly string[] } = {},
  ) {
    const what = context.problems?.length ? ` (${context.problems.join('; ')})` : '';
    super(
      'CorruptRecord',
      `${key} is not a valid registry record${what}; restore an earlier version of the object (the bucket is versioned) or delete it`,
      {
        cause,
        details: {
          key,
          ...(context.model === undefined ? {} : { model: context.model }),
          ...(context.version === undefined ? {} : { version: context.version }),
          ...(context.problems === undefined ? {} : { problems: [...context.problems] }),
        },
      },
    );
  }
}

/** An immutable object of a version already exists with different content. */
export class VersionConflictError extends MaasError {
  constructor(key: string) {
    super(
      'VersionConflict',
      `${key} already exists with different content: versions are immutable, register a new version instead`,
      { details: { key } },
    );
  }
}

/** A conditional-write retry loop gave up: too many writers on one object at once. */
export class RegistryConflictError extends MaasError {
  constructor(key: string, attempts: number) {
    super(
      'RegistryConflict',
      `gave up writing ${key} after ${attempts} attempts lost to concurrent writers; retry the operation`,
      { details: { key, attempts } },
    );
  }
}
