import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type IDestination, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { MaasError } from '../src/errors/index.ts';
import { METRICS_NAMESPACE } from '../src/metrics/index.ts';
import { acknowledge } from './nag.ts';
import type { Architecture as ArchitectureSetting, MaasSettings } from './settings.ts';

/** The handlers under `functions/<name>/handler.ts`, each exporting `handler`. */
export type FunctionName = 'predict' | 'ingest' | 'rollback' | 'promote';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const handlerEntry = (name: FunctionName): string =>
  fileURLToPath(new URL(`../functions/${name}/handler.ts`, import.meta.url));

const ORT_ARCH: Record<ArchitectureSetting, string> = { arm64: 'arm64', x86_64: 'x64' };

/** The bundling hook's script: plain Node.js, so it runs the same on every OS `cdk` runs on. */
export const PRUNE_SCRIPT = fileURLToPath(
  new URL('./bundling/prune-onnxruntime.mjs', import.meta.url),
);

/**
 * The hook commands that leave only the Linux binaries of the target architecture in an asset
 * (see `bundling/prune-onnxruntime.mjs`): `node <script> <folder> <arch>`, nothing a shell must
 * provide, since aws-cdk-lib runs hooks with `bash -c` on Linux and macOS and `cmd /c` on Windows.
 */
export const pruneOnnxRuntimeCommands = (
  outputDir: string,
  arch: ArchitectureSetting,
): string[] => [`node "${PRUNE_SCRIPT}" "${outputDir}" ${ORT_ARCH[arch]}`];

/** A handler file is missing: the function cannot be built. */
export class MissingHandlerError extends MaasError {
  constructor(entry: string) {
    super(
      'MissingHandler',
      `${entry} does not exist: every function needs functions/<name>/handler.ts exporting \`handler\``,
    );
  }
}

export interface MaasFunctionProps {
  readonly name: FunctionName;
  readonly description: string;
  readonly settings: MaasSettings;
  readonly memoryMb: number;
  /** /tmp size (Lambda's ephemeral storage). @default 512 */
  readonly ephemeralStorageMb?: number;
  readonly timeoutSeconds: number;
  /** variables the handler reads through `src/config` and Powertools */
  readonly environment?: Readonly<Record<string, string>>;
  /** Node options after `--enable-source-maps` (NODE_OPTIONS). @default - none */
  readonly nodeOptions?: readonly string[];
  /**
   * Ship onnxruntime-node beside the bundle (esbuild cannot bundle its `.node` and `.so` files).
   * @default false
   */
  readonly onnxRuntime?: boolean;
  /** @default - none */
  readonly reservedConcurrency?: number;
  /**
   * `--enable-source-maps`: stack traces in the logs point into the TypeScript sources, at the
   * cost of parsing the source map at every cold start (`SOURCE_MAPS_NODE_OPTIONS`).
   * @default true
   */
  readonly sourceMaps?: boolean;
  /** asynchronous invocations only (@default - Lambda's defaults, no destination) */
  readonly async?: {
    readonly retryAttempts: number;
    readonly maxEventAge: Duration;
    readonly onFailure: IDestination;
  };
}

/**
 * One handler as a Lambda function, built the same way for all: Node.js 22 ESM bundle with the
 * pinned AWS SDK inside, X-Ray tracing, its own log group with the configured retention, and
 * onnxruntime-node installed beside it (install script skipped, other platforms pruned) when asked.
 */
/** NODE_OPTIONS for a function: source maps unless it goes without, then its own flags */
const nodeOptions = (props: MaasFunctionProps): { NODE_OPTIONS?: string } => {
  const flags = [
    ...(props.sourceMaps === false ? [] : [SOURCE_MAPS_NODE_OPTIONS]),
    ...(props.nodeOptions ?? []),
  ];
  return flags.length === 0 ? {} : { NODE_OPTIONS: flags.join(' ') };
};

export class MaasFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: MaasFunctionProps) {
    super(scope, id);
    const { settings } = props;
    const entry = handlerEntry(props.name);
    if (!existsSync(entry)) throw new MissingHandlerError(entry);
    const removalPolicy =
      settings.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: settings.logRetentionDays,
      removalPolicy,
    });

    // Its own role instead of AWSLambdaBasicExecutionRole: log writes only to its own log group.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `onnx-maas ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry,
      role: this.role,
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: settings.architecture === 'arm64' ? Architecture.ARM_64 : Architecture.X86_64,
      memorySize: props.memoryMb,
      ...(props.ephemeralStorageMb === undefined
        ? {}
        : { ephemeralStorageSize: Size.mebibytes(props.ephemeralStorageMb) }),
      timeout: Duration.seconds(props.timeoutSeconds),
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      ...(props.reservedConcurrency === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrency }),
      ...(props.async === undefined
        ? {}
        : {
            retryAttempts: props.async.retryAttempts,
            maxEventAge: props.async.maxEventAge,
            onFailure: props.async.onFailure,
          }),
      environment: {
        ...nodeOptions(props),
        POWERTOOLS_SERVICE_NAME: `maas-${props.name}`,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: bundlingOptions(settings.architecture, props.onnxRuntime === true),
    });

    acknowledge(this.role, {
      'AwsSolutions-IAM5[Resource::*]':
        'xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) have no resource-level permissions',
    });
    const runtimeReason =
      'nodejs22.x on purpose: the Node.js line the handlers, @middy/core 7 and the test suite run on';
    acknowledge(this.function, {
      'AwsSolutions-L1': runtimeReason,
      'Serverless-LambdaLatestVersion': runtimeReason,
      'Serverless-LambdaDLQ':
        props.async === undefined
          ? 'invoked synchronously only (API Gateway): the caller receives the error, a DLQ never fills'
          : 'failed asynchronous events go to an on-failure destination queue (with the error), which supersedes a DLQ',
    });
  }
}

/**
 * NODE_OPTIONS of the functions with `sourceMaps` (readable stack traces in their logs). Predict
 * goes without: parsing the bundle's 1 MB source map at import added 18-20 ms (17%) to its import
 * on the 2-core x86 machine of 2026-12-03 (`node --enable-source-maps` vs plain, importing the
 * synthesized asset's index.mjs 8 times each, 114-134 ms against 96-114 ms), all of it on the
 * cold start path; its stack traces are logged minified, and `index.mjs.map` in the asset maps
 * them back. bench/coldstart.ts starts the bundle with predict's setting.
 */
export const SOURCE_MAPS_NODE_OPTIONS = '--enable-source-maps';

export const bundlingOptions = (
  arch: ArchitectureSetting,
  onnxRuntime: boolean,
): BundlingOptions => ({
  format: OutputFormat.ESM,
  target: 'node22',
  // ESM entry points first so packages with both builds (middy, Powertools, the SDK) tree-shake.
  mainFields: ['module', 'main'],
  // CommonJS dependencies inside an ESM bundle still call `require` for Node built-ins.
  banner:
    "import { createRequire as __maasCreateRequire } from 'node:module'; const require = __maasCreateRequire(import.meta.url);",
  minify: true,
  sourceMap: true,
  sourcesContent: false,
  // The SDK version the project pins and tests with, not whatever the runtime happens to carry.
  bundleAwsSDK: true,
  ...(onnxRuntime
    ? {
        nodeModules: ['onnxruntime-node'],
        // `npm ci` in the asset folder ignores the project's `allowScripts`: skip every
        // lifecycle script there, and onnxruntime-node's CUDA download by name as well.
        environment: { ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_ignore_scripts: 'true' },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) =>
            pruneOnnxRuntimeCommands(outputDir, arch),
        },
      }
    : {}),
});
