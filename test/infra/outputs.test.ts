import { describe, expect, it } from 'vitest';
import { StackOutputsError, stackOutputsFrom } from '../../infra/outputs.ts';

const outputs = {
  ApiUrl: 'https://abc123.execute-api.eu-west-1.amazonaws.com/',
  BucketName: 'onnxmaas-modelsbucket-1a2b3c',
  DashboardUrl:
    'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/OnnxMaas',
  Region: 'eu-west-1',
};

describe('stack outputs file', () => {
  it('reads the one stack of a file `cdk deploy --outputs-file` wrote', () => {
    expect(stackOutputsFrom({ OnnxMaas: outputs })).toEqual({
      apiUrl: outputs.ApiUrl,
      bucketName: outputs.BucketName,
      dashboardUrl: outputs.DashboardUrl,
      region: 'eu-west-1',
    });
  });

  it('picks the named stack among several, and asks for a name otherwise', () => {
    const file = { OnnxMaas: outputs, Staging: { ...outputs, Region: 'us-east-1' } };
    expect(stackOutputsFrom(file, 'Staging').region).toBe('us-east-1');
    expect(() => stackOutputsFrom(file)).toThrow(
      /holds several stacks \(OnnxMaas, Staging\): name one with --stack/,
    );
  });

  it('names the stacks it has when the requested one is missing', () => {
    expect(() => stackOutputsFrom({ OnnxMaas: outputs }, 'Prod')).toThrow(
      /has no stack "Prod" \(it has: OnnxMaas\)/,
    );
  });

  it('says which output is missing and how to write the file again', () => {
    const { Region: _, ...withoutRegion } = outputs;
    expect(() => stackOutputsFrom({ OnnxMaas: withoutRegion })).toThrow(StackOutputsError);
    expect(() => stackOutputsFrom({ OnnxMaas: withoutRegion })).toThrow(
      /stack "OnnxMaas" in the outputs file has no Region output: deploy the current stack and write it with `npx cdk deploy --outputs-file cdk-outputs.json`/,
    );
    expect(() => stackOutputsFrom([])).toThrow(/not a JSON object of stacks/);
  });
});
