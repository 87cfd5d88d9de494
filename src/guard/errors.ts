import { MaasError } from '../errors/index.ts';

/** Alarm overrides or a time scale the guard cannot use. */
export class InvalidAlarmOptionsError extends MaasError {
  constructor(problems: readonly string[]) {
    super('InvalidAlarmOptions', `invalid guard alarm options:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
}

/** A manual rollback found nothing to undo. */
export class NothingToRollBackError extends MaasError {
  constructor(model: string, why: string) {
    super(
      'NothingToRollBack',
      `model "${model}" has nothing to roll back: ${why}; name the version to serve with \`maas rollback ${model} --to VERSION\``,
      { details: { model } },
    );
  }
}
