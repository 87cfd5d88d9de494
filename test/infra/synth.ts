import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readSettings } from '../../infra/settings.ts';
import { MaasStack } from '../../infra/stack.ts';

/** The context `cdk synth` uses: the feature flags of cdk.json. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

export interface Synthesized {
  app: App;
  stack: MaasStack;
  template: Template;
  /** removes the cloud assembly written to a temporary directory */
  dispose(): void;
}

/**
 * Builds the stack as `infra/app.ts` does (cdk.json flags, settings validated from context, the
 * guard's own rules) and synthesizes it once, without bundling the handlers.
 */
export const synthesize = (context: Record<string, unknown> = {}): Synthesized => {
  const outdir = mkdtempSync(join(tmpdir(), 'maas-infra-'));
  const dispose = () => rmSync(outdir, { recursive: true, force: true });
  try {
    const app = new App({
      outdir,
      context: { ...CDK_JSON_CONTEXT, ...context, 'aws:cdk:bundling-stacks': [] },
    });
    const settings = readSettings(
      (key) => app.node.tryGetContext(key),
      Object.keys(app.node.getAllContext()),
    );
    const stack = new MaasStack(app, settings.stackName, { settings });
    return { app, stack, template: Template.fromStack(stack), dispose };
  } catch (err) {
    dispose();
    throw err;
  }
};
