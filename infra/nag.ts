import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag findings on one construct (and what it contains), each with its reason.
 * Callers pass the narrowest construct that produces the finding: a role, a function, a queue.
 */
export const acknowledge = (
  scope: IConstruct,
  findings: Readonly<Record<string, string>>,
): void => {
  for (const [id, reason] of Object.entries(findings))
    Validations.of(scope).acknowledge({ id, reason });
};

/** The IAM5 finding id cdk-nag reports for a policy resource `<resource ARN>/<keyPattern>`. */
export const arnPatternFinding = (resource: IConstruct, keyPattern: string): string => {
  const logicalId = Stack.of(resource).getLogicalId(resource.node.defaultChild as CfnElement);
  return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/${keyPattern}]`;
};
