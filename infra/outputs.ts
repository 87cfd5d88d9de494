import { MaasError } from '../src/errors/index.ts';

/**
 * The stack outputs, by the names `cdk deploy --outputs-file <file>` writes them under:
 *
 * ```json
 * { "OnnxMaas": { "ApiUrl": "https://…/", "BucketName": "…", "DashboardUrl": "https://…",
 *                 "Region": "eu-west-1", "AlertTopicArn": "arn:aws:sns:…" } }
 * ```
 *
 * Dependency-free, so the CLI can read a deployed stack without loading the CDK.
 */
export const STACK_OUTPUTS = {
  apiUrl: 'ApiUrl',
  bucketName: 'BucketName',
  dashboardUrl: 'DashboardUrl',
  region: 'Region',
} as const;

/** Not read by the CLI: subscribe to it (email, chat) to hear about every rollback. */
export const ALERT_TOPIC_OUTPUT = 'AlertTopicArn';

export type StackOutputs = { readonly [K in keyof typeof STACK_OUTPUTS]: string };

/** The outputs file does not hold what a deployed stack should have written. */
export class StackOutputsError extends MaasError {
  constructor(message: string) {
    super('InvalidStackOutputs', message);
  }
}

/**
 * Reads one stack's outputs from the parsed outputs file. `stackName` may be omitted when the
 * file holds exactly one stack.
 */
export const stackOutputsFrom = (file: unknown, stackName?: string): StackOutputs => {
  const redeploy = 'write it with `npx cdk deploy --outputs-file cdk-outputs.json`';
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new StackOutputsError(`the outputs file is not a JSON object of stacks: ${redeploy}`);
  }
  const stacks = Object.keys(file);
  const name = stackName ?? (stacks.length === 1 ? stacks[0] : undefined);
  if (name === undefined) {
    throw new StackOutputsError(
      `the outputs file holds ${stacks.length === 0 ? 'no stacks' : `several stacks (${stacks.join(', ')})`}: name one with --stack, or ${redeploy}`,
    );
  }
  const outputs: unknown = (file as Record<string, unknown>)[name];
  if (typeof outputs !== 'object' || outputs === null) {
    throw new StackOutputsError(
      `the outputs file has no stack "${name}" (it has: ${stacks.join(', ') || 'none'}): pass one of those to --stack, or ${redeploy}`,
    );
  }
  const read = (key: string): string => {
    const value = (outputs as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value === '') {
      throw new StackOutputsError(
        `stack "${name}" in the outputs file has no ${key} output: deploy the current stack and ${redeploy}`,
      );
    }
    return value;
  };
  return {
    apiUrl: read(STACK_OUTPUTS.apiUrl),
    bucketName: read(STACK_OUTPUTS.bucketName),
    dashboardUrl: read(STACK_OUTPUTS.dashboardUrl),
    region: read(STACK_OUTPUTS.region),
  };
};
