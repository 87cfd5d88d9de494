import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { MaasError } from '../src/errors/index.ts';
import { readSettings } from './settings.ts';
import { MaasStack } from './stack.ts';

const app = new App();
try {
  const settings = readSettings(
    (key) => app.node.tryGetContext(key),
    Object.keys(app.node.getAllContext()),
  );
  new MaasStack(app, settings.stackName, {
    settings,
    description: 'onnx-maas: ONNX models served from S3 through API Gateway and Lambda',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  app.synth();
} catch (err) {
  // Settings and definition errors are for the person running cdk: the message, not a trace.
  if (!(err instanceof MaasError)) throw err;
  console.error(err.message);
  process.exitCode = 1;
}
