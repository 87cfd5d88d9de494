import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { GuardAlarmDefinition } from '../../infra/guard.ts';
import { readSettings } from '../../infra/settings.ts';
import { MaasStack } from '../../infra/stack.ts';

/** The context `cdk synth` uses: the feature flags of cdk.json. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

/** Two rules shaped like the guard's (count-based and average-based). */
export const TEST_ALARMS: readonly GuardAlarmDefinition[] = [
  {
    name: 'model-errors',
    description: 'server-side failures of one model and variant',
    metricName: 'ModelErrors',
    statistic: 'SUM',
    threshold: 5,
    periodSeconds: 60,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    minRequests: 20,
  },
  {
    name: 'latency',
    metricName: 'Latency',
    statistic: 'AVG',
    threshold: 1000,
    periodSeconds: 60,
    evaluationPeriods: 5,
    datapointsToAlarm: 3,
    minRequests: 20,
  },
];

export interface Synthesized {
  app: App;
  stack: MaasStack;
  template: Template;
  /** removes the cloud assembly written to a temporary directory */
  dispose(): void;
}

/**
 * Builds the stack as `infra/app.ts` does (cdk.json flags, settings validated from context) and
 * synthesizes it once, without bundling the handlers.
 */
export const synthesize = (
  context: Record<string, unknown> = {},
  alarms: readonly GuardAlarmDefinition[] = TEST_ALARMS,
): Synthesized => {
  const outdir = mkdtempSync(join(tmpdir(), 'maas-infra-'));
  const app = new App({
    outdir,
    context: { ...CDK_JSON_CONTEXT, ...context, 'aws:cdk:bundling-stacks': [] },
  });
  const settings = readSettings(
    (key) => app.node.tryGetContext(key),
    Object.keys(app.node.getAllContext()),
  );
  const stack = new MaasStack(app, settings.stackName, { settings, alarms });
  const template = Template.fromStack(stack);
  return { app, stack, template, dispose: () => rmSync(outdir, { recursive: true, force: true }) };
};
