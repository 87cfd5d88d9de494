import type { Command } from 'commander';
import { promoteVersion } from '../../src/guard/index.ts';
import { parsePositiveInteger } from '../errors.ts';
import { printJson, printLine } from '../output.ts';
import { withContext } from '../run.ts';

export function registerPromote(program: Command): void {
  program
    .command('promote')
    .argument('<model>', 'model name')
    .argument('<version>', 'the version to serve as production', (value) =>
      parsePositiveInteger(value, 'version'),
    )
    .description(
      'make a version production now (also one the guard rolled back); the old production becomes known-good',
    )
    .action(async (model: string, version: number, _options: unknown, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        const outcome = await promoteVersion(registry, model, version);
        if (options.json) {
          printJson(outcome);
          return;
        }
        if (!outcome.changed) {
          printLine(`${model}: v${version} is already production; nothing changed`);
          return;
        }
        const previous = outcome.previous === undefined ? '' : ` (was v${outcome.previous})`;
        printLine(`${model}: v${version} is production${previous}`);
      }),
    );
}
