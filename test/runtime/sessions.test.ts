import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseEmfLine } from '../../src/metrics/index.ts';
import { ModelRejectedError, validateModel } from '../../src/onnx/index.ts';
import { emfNamedModel } from '../support/forged-models.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./forged-log.ts', import.meta.url));

const run = (): Promise<{ stdout: string; stderr: string }> =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', SCRIPT],
      { cwd: ROOT, env: process.env, timeout: 60_000 },
      (err, stdout, stderr) => (err === null ? resolve({ stdout, stderr }) : reject(err)),
    );
  });

describe('sessions', () => {
  it('let no model print a line that parses as EMF, whatever its node names', async () => {
    const { stdout, stderr } = await run();
    // the runs happened: one failed on an index past the table, one answered
    expect(stdout).toContain('failed 9');
    expect(stdout).toContain('ran 1');
    const forged = [...stdout.split('\n'), ...stderr.split('\n')].filter(
      (line) => parseEmfLine(line).length > 0,
    );
    expect(forged).toEqual([]);
  });

  it('are never made for such a model: validation refuses names with control characters', () => {
    expect(() => validateModel(emfNamedModel('victim'))).toThrow(ModelRejectedError);
    try {
      validateModel(emfNamedModel('victim'));
    } catch (err) {
      expect((err as ModelRejectedError).code).toBe('ControlCharacterInName');
      expect((err as Error).message).toMatch(/^The name of the main graph is "forged\\n/);
    }
  });
});
