import '../local/sdk-warning.ts';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { errorMessage, MaasError } from '../src/errors/index.ts';
import { StorageUnavailableError } from '../src/storage/index.ts';
import { registerCanary } from './commands/canary.ts';
import { registerConsole } from './commands/console.ts';
import { registerDev } from './commands/dev.ts';
import { registerExplain } from './commands/explain.ts';
import { registerHistory } from './commands/history.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerModels } from './commands/models.ts';
import { registerPredict } from './commands/predict.ts';
import { registerPromote } from './commands/promote.ts';
import { registerPush } from './commands/push.ts';
import { registerRollback } from './commands/rollback.ts';
import { registerShow } from './commands/show.ts';
import { registerVersions } from './commands/versions.ts';
import { DEFAULT_OUTPUTS_FILE, localDefaults, normalizeStackArgv } from './target.ts';

const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The `maas` program; each command lives in its own file under `commands/`. */
export function createProgram(): Command {
  const defaults = localDefaults();
  const program = new Command('maas')
    .description('Manage and serve ONNX models: upload, list, inspect, audit, predict, explain')
    .version(PACKAGE.version, '-V, --version', "print the CLI's version")
    .option(
      '--stack [outputs.json]',
      `target a deployed stack, read from the file \`cdk deploy --outputs-file\` writes (default file: ${DEFAULT_OUTPUTS_FILE}), with AWS credentials from the default chain (predict signs with SigV4, or sends MAAS_TOKEN as a bearer token when it is set)`,
    )
    .option('--stack-name <name>', 'the stack to use when the outputs file holds several')
    .option(
      '--endpoint <url>',
      'S3 endpoint of the stack (default: the local stack)',
      defaults.endpoint,
    )
    .option(
      '--api-url <url>',
      'HTTP API of the stack, for predict (default: the local stack)',
      defaults.apiUrl,
    )
    .option('--bucket <name>', "model bucket (with --stack: the stack's)", defaults.bucket)
    .option('--region <region>', "AWS region (with --stack: the stack's)", defaults.region)
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError();
  registerPush(program);
  registerModels(program);
  registerVersions(program);
  registerShow(program);
  registerHistory(program);
  registerInspect(program);
  registerPredict(program);
  registerExplain(program);
  registerPromote(program);
  registerRollback(program);
  registerCanary(program);
  registerDev(program);
  registerConsole(program);
  return program;
}

interface ProgramOptions {
  endpoint?: string;
  stack?: string | true;
}

const staleNote = (): string => {
  const { stale } = localDefaults();
  return stale === undefined
    ? ''
    : `\n(${stale.home}/stack.json names a stack that is no longer running: pid ${stale.pid}, S3 ${stale.s3})`;
};

function explain(err: unknown, options: ProgramOptions): string {
  const message = err instanceof MaasError ? err.message : errorMessage(err);
  if (err instanceof StorageUnavailableError) {
    return options.stack === undefined
      ? `${message}\nis the stack running at ${options.endpoint ?? 'the endpoint'}? Start the local one with \`npm start\` (a second terminal finds it through $MAAS_HOME/stack.json), or pass --endpoint${staleNote()}`
      : `${message}\nis the stack in ${options.stack === true ? DEFAULT_OUTPUTS_FILE : options.stack} deployed, and do your AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...) reach its bucket?`;
  }
  return message;
}

export async function main(argv: string[]): Promise<number> {
  let program: Command;
  try {
    program = createProgram();
  } catch (err) {
    process.stderr.write(`maas: ${explain(err, {})}\n`);
    return 1;
  }
  try {
    await program.parseAsync(normalizeStackArgv(argv));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    process.stderr.write(`maas: ${explain(err, program.opts<ProgramOptions>())}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
