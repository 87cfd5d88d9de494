import { Command } from 'commander';
import { errorMessage, MaasError } from '../src/errors/index.ts';
import { StorageUnavailableError } from '../src/storage/index.ts';
import { registerHistory } from './commands/history.ts';
import { registerModels } from './commands/models.ts';
import { registerPush } from './commands/push.ts';
import { registerShow } from './commands/show.ts';
import { registerVersions } from './commands/versions.ts';
import { defaultGlobalOptions } from './context.ts';

/** The `maas` program; each command lives in its own file under `commands/`. */
export function createProgram(): Command {
  const defaults = defaultGlobalOptions();
  const program = new Command('maas')
    .description('Manage and serve ONNX models: upload, list, inspect, audit')
    .option(
      '--endpoint <url>',
      'S3 endpoint of the stack (default: the local stack)',
      defaults.endpoint,
    )
    .option('--bucket <name>', 'model bucket', defaults.bucket)
    .option('--region <region>', 'AWS region', defaults.region)
    .option('--json', 'print JSON instead of tables')
    .showHelpAfterError();
  registerPush(program);
  registerModels(program);
  registerVersions(program);
  registerShow(program);
  registerHistory(program);
  return program;
}

function explain(err: unknown, endpoint: string | undefined): string {
  const message = err instanceof MaasError ? err.message : errorMessage(err);
  if (err instanceof StorageUnavailableError) {
    return `${message}\nis the stack running at ${endpoint ?? 'the endpoint'}? Start the local one with \`npm start\`, or pass --endpoint`;
  }
  return message;
}

export async function main(argv: string[]): Promise<number> {
  let program: Command;
  try {
    program = createProgram();
  } catch (err) {
    process.stderr.write(`maas: ${explain(err, undefined)}\n`);
    return 1;
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const endpoint = program.opts<{ endpoint?: string }>().endpoint;
    process.stderr.write(`maas: ${explain(err, endpoint)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
