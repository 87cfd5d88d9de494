import type { Command } from 'commander';
import { rollbackLatest, rollbackTo } from '../../src/guard/index.ts';
import { parsePositiveInteger } from '../errors.ts';
import { printJson, printLine } from '../output.ts';
import { withContext } from '../run.ts';

export function registerRollback(program: Command): void {
  program
    .command('rollback')
    .argument('<model>', 'model name')
    .option('--to <version>', 'serve this version as production', (value) =>
      parsePositiveInteger(value, '--to'),
    )
    .description(
      'undo the latest change (drop the candidate, else revert production to the last known-good version), or serve --to VERSION; the replaced version is marked rolled back',
    )
    .action(async (model: string, local: { to?: number }, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        if (local.to !== undefined) {
          const outcome = await rollbackTo(registry, model, local.to);
          if (options.json) printJson(outcome);
          else if (!outcome.changed) {
            printLine(`${model}: v${local.to} is already production; nothing changed`);
          } else {
            const from =
              outcome.previous === undefined ? '' : ` (v${outcome.previous} rolled back)`;
            printLine(`${model}: v${local.to} is production${from}`);
          }
          return;
        }
        const outcome = await rollbackLatest(registry, model);
        if (options.json) {
          printJson(outcome);
          return;
        }
        printLine(
          outcome.action === 'dropped-candidate'
            ? `${model}: candidate v${outcome.version} dropped and marked rolled back`
            : `${model}: production reverted from v${outcome.version} to v${outcome.restored}`,
        );
      }),
    );
}
