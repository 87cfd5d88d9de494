import type { Command } from 'commander';
import { type CliContext, openContext } from './context.ts';

/** Runs a command's body with an open context and always releases it. */
export async function withContext<T>(
  command: Command,
  body: (context: CliContext) => Promise<T>,
): Promise<T> {
  const context = openContext(command);
  try {
    return await body(context);
  } finally {
    context.close();
  }
}
