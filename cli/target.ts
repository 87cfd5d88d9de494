import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
// dependency-free by design: the CLI reads the stack's output names without loading the CDK
import { STACK_OUTPUTS } from '../infra/outputs.ts';
import { readStackInfo, type StackInfo, StackInfoError } from '../local/stack-info.ts';
import { envText, loadConfig } from '../src/config/index.ts';
import { MaasError } from '../src/errors/index.ts';

/** What `cdk deploy --outputs-file` is told to write in the README's deploy steps. */
export const DEFAULT_OUTPUTS_FILE = 'cdk-outputs.json';

/** The stack `npm start` runs on this machine: s3rver's fixed credentials, unsigned HTTP. */
export interface LocalTarget {
  kind: 'local';
  s3Endpoint: string;
  bucket: string;
  region: string;
  apiUrl: string;
  /** the stack's own (stack.json); unset: s3rver's defaults */
  credentials?: StackInfo['credentials'];
}

/** the environment variable holding a JWT for a stack deployed with `maas:auth=jwt` */
export const TOKEN_VARIABLE = 'MAAS_TOKEN';

/**
 * A deployed stack: the default AWS credential chain for S3; HTTP requests signed with SigV4, or
 * carrying `token` as a bearer token when one is set (JWT auth).
 */
export interface StackTarget {
  kind: 'stack';
  /** the outputs file it was read from */
  file: string;
  stackName: string;
  /** unset: AWS S3 itself (or `AWS_ENDPOINT_URL_S3`, which the SDK reads) */
  s3Endpoint?: string;
  bucket: string;
  region: string;
  apiUrl: string;
  dashboardUrl?: string;
  /** from MAAS_TOKEN (an environment variable, so the token stays out of shell history and `ps`) */
  token?: string;
}

export type Target = LocalTarget | StackTarget;

/** The outputs file of `--stack` cannot be used; the message says what was found instead. */
export class StackOutputsFileError extends MaasError {
  constructor(file: string, message: string, cause?: unknown) {
    super('InvalidStackOutputs', message, { cause, details: { file } });
  }
}

const HOW_TO_WRITE = `deploy with \`npx cdk deploy --outputs-file ${DEFAULT_OUTPUTS_FILE}\``;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const nonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value.trim() !== '';

/** `https://abc.execute-api.eu-west-1.amazonaws.com/` → `eu-west-1`, for files without a Region output. */
const regionOfApiUrl = (url: string): string | undefined =>
  /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com/.exec(new URL(url).hostname)?.[1];

function readOutputsFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new StackOutputsFileError(
      file,
      code === 'ENOENT'
        ? `no stack outputs file at ${file}: ${HOW_TO_WRITE}, or pass --stack <outputs.json>`
        : `cannot read the stack outputs file ${file}: ${(err as Error).message}`,
      err,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new StackOutputsFileError(
      file,
      `${file} is not JSON (${(err as Error).message}): pass the file ${HOW_TO_WRITE} writes`,
      err,
    );
  }
  if (!isRecord(parsed)) {
    throw new StackOutputsFileError(
      file,
      `${file} is not a CDK outputs file: expected {"<stack name>": {"${STACK_OUTPUTS.apiUrl}": ..., "${STACK_OUTPUTS.bucketName}": ...}}, as ${HOW_TO_WRITE} writes`,
    );
  }
  return parsed;
}

const describeFound = (outputs: Record<string, unknown>): string => {
  const stacks = Object.entries(outputs).map(([name, values]) =>
    isRecord(values) ? `${name} (${Object.keys(values).join(', ') || 'no outputs'})` : name,
  );
  return stacks.length === 0 ? 'no stacks' : stacks.join('; ');
};

/**
 * The stack described by a `cdk deploy --outputs-file` file: the one stack with an API URL and a
 * bucket, or the one named `stackName`.
 */
export function readStackOutputs(
  file: string,
  stackName?: string,
): Omit<StackTarget, 'region' | 's3Endpoint'> & { region?: string } {
  const outputs = readOutputsFile(file);
  const usable = Object.entries(outputs).filter(
    (entry): entry is [string, Record<string, unknown>] =>
      isRecord(entry[1]) &&
      nonEmptyString(entry[1][STACK_OUTPUTS.apiUrl]) &&
      nonEmptyString(entry[1][STACK_OUTPUTS.bucketName]),
  );
  const wanted = `outputs ${STACK_OUTPUTS.apiUrl} and ${STACK_OUTPUTS.bucketName}`;
  const chosen = stackName === undefined ? usable : usable.filter(([name]) => name === stackName);
  const [stack, ...others] = chosen;
  if (stack === undefined) {
    throw new StackOutputsFileError(
      file,
      `${file} has no stack${stackName === undefined ? '' : ` named ${stackName}`} with ${wanted}; found ${describeFound(outputs)}. ${HOW_TO_WRITE}`,
    );
  }
  if (others.length > 0) {
    throw new StackOutputsFileError(
      file,
      `${file} has several stacks with ${wanted} (${chosen.map(([name]) => name).join(', ')}): choose one with --stack-name`,
    );
  }
  const [name, values] = stack;
  const apiUrl = String(values[STACK_OUTPUTS.apiUrl]);
  if (!URL.canParse(apiUrl) || !/^https?:$/.test(new URL(apiUrl).protocol)) {
    throw new StackOutputsFileError(
      file,
      `${STACK_OUTPUTS.apiUrl} of stack ${name} in ${file} is not an http(s) URL: ${JSON.stringify(apiUrl)}`,
    );
  }
  const region = values[STACK_OUTPUTS.region];
  const dashboardUrl = values[STACK_OUTPUTS.dashboardUrl];
  const inferredRegion = nonEmptyString(region) ? region : regionOfApiUrl(apiUrl);
  return {
    kind: 'stack',
    file,
    stackName: name,
    bucket: String(values[STACK_OUTPUTS.bucketName]),
    apiUrl,
    ...(inferredRegion === undefined ? {} : { region: inferredRegion }),
    ...(nonEmptyString(dashboardUrl) ? { dashboardUrl } : {}),
  };
}

interface TargetOptions {
  stack?: string | true;
  stackName?: string;
  endpoint?: string;
  apiUrl?: string;
  bucket?: string;
  region?: string;
}

export interface LocalDefaults {
  endpoint: string;
  bucket: string;
  region: string;
  apiUrl: string;
  /** the running stack's stack.json they came from, if any */
  stackInfo?: StackInfo;
  /** a stack.json left by a stack that is no longer running (ignored) */
  stale?: StackInfo;
  /** a stack.json that could not be used; thrown when the local stack is the target */
  problem?: StackInfoError;
}

/**
 * Defaults of the global options: the local stack that `npm start` runs. A running stack's
 * `$MAAS_HOME/stack.json` names its ports; `MAAS_S3_PORT` or `PORT` set in this shell win over it,
 * and the typed `--endpoint`/`--api-url` over both.
 */
export function localDefaults(env: NodeJS.ProcessEnv = process.env): LocalDefaults {
  const config = loadConfig(env);
  const fallback = {
    endpoint: `http://127.0.0.1:${config.local.s3Port}`,
    bucket: config.storage.bucket,
    region: config.storage.region,
    apiUrl: `http://127.0.0.1:${config.local.apiPort}`,
  };
  let found: ReturnType<typeof readStackInfo>;
  try {
    found = readStackInfo(config.local.home);
  } catch (err) {
    if (err instanceof StackInfoError) return { ...fallback, problem: err };
    throw err;
  }
  if (found === undefined) return fallback;
  if (!found.live) return { ...fallback, stale: found.info };
  const { info } = found;
  return {
    endpoint: envText(env, 'MAAS_S3_PORT') === undefined ? info.s3 : fallback.endpoint,
    bucket: envText(env, 'MAAS_BUCKET') === undefined ? info.bucket : fallback.bucket,
    region: info.region,
    apiUrl: envText(env, 'PORT') === undefined ? info.api : fallback.apiUrl,
    stackInfo: info,
  };
}

/**
 * Where the command line points: the local stack, or with `--stack` (or `--stack-name`) the
 * deployed one. Options the user typed (`--endpoint`, `--api-url`, `--bucket`, `--region`) win
 * over what stack.json or the outputs file says.
 */
export function resolveTarget(command: Command): Target {
  const options = command.optsWithGlobals<TargetOptions>();
  const typed = (key: keyof TargetOptions): boolean =>
    command.getOptionValueSourceWithGlobals(key) === 'cli';
  const defaults = localDefaults();
  const apiUrl = typed('apiUrl') ? options.apiUrl : undefined;
  if (options.stack === undefined && options.stackName === undefined) {
    if (defaults.problem !== undefined && !(typed('endpoint') && typed('apiUrl'))) {
      throw defaults.problem;
    }
    const credentials = defaults.stackInfo?.credentials;
    return {
      kind: 'local',
      s3Endpoint: options.endpoint ?? defaults.endpoint,
      bucket: options.bucket ?? defaults.bucket,
      region: options.region ?? defaults.region,
      apiUrl: options.apiUrl ?? defaults.apiUrl,
      ...(credentials === undefined ? {} : { credentials }),
    };
  }
  const file =
    options.stack === undefined || options.stack === true ? DEFAULT_OUTPUTS_FILE : options.stack;
  const stack = readStackOutputs(file, options.stackName);
  const token = envText(process.env, TOKEN_VARIABLE);
  return {
    ...stack,
    ...(apiUrl === undefined ? {} : { apiUrl }),
    ...(token === undefined ? {} : { token }),
    ...(typed('endpoint') && options.endpoint !== undefined
      ? { s3Endpoint: options.endpoint }
      : {}),
    bucket: typed('bucket') && options.bucket !== undefined ? options.bucket : stack.bucket,
    region:
      (typed('region') ? options.region : undefined) ??
      stack.region ??
      options.region ??
      defaults.region,
  };
}

/**
 * `--stack` takes an optional file, and commander would take the next word whatever it is:
 * `maas --stack models` must not read a file named "models". The file is taken only when it
 * names a `.json` file; any other path can be given as `--stack=PATH`.
 */
export function normalizeStackArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    out.push(arg);
    if (arg !== '--stack') continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-') && next.endsWith('.json')) {
      out.push(next);
      i += 1;
    } else {
      out[out.length - 1] = `--stack=${DEFAULT_OUTPUTS_FILE}`;
    }
  }
  return out;
}
