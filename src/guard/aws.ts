/** The guard's AWS adapters: CloudWatch figures, SNS notices, and the functions' wiring. */
export { CloudWatchMetricsReader } from './cloudwatch.ts';
export { guardDepsFromEnv } from './from-env.ts';
export { SnsNotifier } from './notify.ts';
