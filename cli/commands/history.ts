import type { Command } from 'commander';
import type { HistoryRecord } from '../../src/registry/index.ts';
import { parsePositiveInteger } from '../errors.ts';
import { dash, printJson, printTable } from '../output.ts';
import { withContext } from '../run.ts';

const describe = (record: HistoryRecord): string => {
  const details = record.details ?? {};
  const parts: string[] = [];
  if (record.reason !== undefined) parts.push(record.reason);
  if (typeof details.sourceKey === 'string') parts.push(`from ${details.sourceKey}`);
  return parts.join(' ') || '-';
};

export function registerHistory(program: Command): void {
  program
    .command('history')
    .argument('<model>', 'model name')
    .option('--limit <n>', 'only the newest N records', (value) =>
      parsePositiveInteger(value, '--limit'),
    )
    .description('the audit trail of a model: registrations, rejections, promotions, rollbacks')
    .action(async (model: string, local: { limit?: number }, command: Command) =>
      withContext(command, async ({ registry, options }) => {
        const records = await registry.history(
          model,
          local.limit === undefined ? {} : { limit: local.limit },
        );
        if (options.json) {
          printJson({ model, history: records });
          return;
        }
        printTable(
          ['AT', 'EVENT', 'VERSION', 'ACTOR', 'DETAILS'],
          records.map((record) => [
            record.at,
            record.event,
            record.version === undefined ? '-' : `v${dash(record.version)}`,
            record.actor,
            describe(record),
          ]),
          `no history for model "${model}"`,
        );
      }),
    );
}
