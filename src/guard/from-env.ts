import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { SNSClient } from '@aws-sdk/client-sns';
import { loadConfig } from '../config/index.ts';
import { Registry } from '../registry/index.ts';
import { S3ObjectStore } from '../storage/s3.ts';
import { CloudWatchMetricsReader } from './cloudwatch.ts';
import type { GuardDeps } from './deps.ts';
import { SnsNotifier } from './notify.ts';
import { guardSettings } from './settings.ts';

/** The cloud wiring: the model bucket, CloudWatch, and SNS when `MAAS_ALERT_TOPIC_ARN` is set. */
export function guardDepsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): GuardDeps {
  const { storage } = loadConfig(env);
  const settings = guardSettings(env);
  const store = new S3ObjectStore(storage);
  return {
    registry: new Registry(store),
    metrics: new CloudWatchMetricsReader(new CloudWatchClient({ region: storage.region })),
    settings,
    ...(settings.alertTopicArn === undefined
      ? {}
      : {
          notifier: new SnsNotifier(
            new SNSClient({ region: storage.region }),
            settings.alertTopicArn,
          ),
        }),
  };
}
