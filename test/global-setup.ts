import { ensureExampleModels } from '../models/generate.ts';

/** Generates the example models once per test run (a no-op when they are already up to date). */
export default async function setup(): Promise<void> {
  await ensureExampleModels();
}
