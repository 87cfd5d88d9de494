import { MaasError } from '../src/errors/index.ts';
import { INGEST_MEMORY, ingestMemoryNeededMb, largestModelMb } from '../src/ingest/memory.ts';
import { isValidModelName } from '../src/registry/keys.ts';

/**
 * Deployment settings, read from `cdk.json` context (or `-c maas:<name>=<value>` on the command
 * line) and validated before any construct is built. Defaults live in `SETTING_DEFAULTS` only.
 */
export type Architecture = 'arm64' | 'x86_64';
export type RemovalMode = 'retain' | 'destroy';
export type AuthSettings =
  | { readonly mode: 'iam' }
  | { readonly mode: 'jwt'; readonly issuer: string; readonly audience: readonly string[] };

export interface FunctionSettings {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

export interface PredictSettings extends FunctionSettings {
  /** caps the instances predict may take from the account's pool; unset = unreserved */
  readonly reservedConcurrency?: number;
  /** instances kept initialised (model sessions stay warm); 0 = none */
  readonly provisionedConcurrency: number;
  /** models a provisioned instance loads during its init (needs provisionedConcurrency > 0) */
  readonly preloadModels: readonly string[];
  /** `/explain` routes answer (`MAAS_EXPLAIN`); off: 404 saying so */
  readonly explain: boolean;
  /** the most model evaluations one explanation may ask for (`MAAS_EXPLAIN_MAX_BUDGET`); unset = the code's default */
  readonly explainMaxBudget?: number;
}

export interface IngestSettings extends FunctionSettings {
  /** Lambda's own retries of a failed asynchronous invocation (0–2) */
  readonly retryAttempts: number;
  /** an upload event older than this goes to the failure queue instead of being retried */
  readonly maxEventAgeSeconds: number;
  /** uploads over this are rejected from their HEAD (MAAS_MAX_MODEL_BYTES); memoryMb must hold it */
  readonly maxModelMb: number;
}

export interface MaasSettings {
  readonly stackName: string;
  readonly architecture: Architecture;
  readonly predict: PredictSettings;
  readonly ingest: IngestSettings;
  /** rollback and promote: small control-plane functions */
  readonly control: FunctionSettings;
  readonly auth: AuthSettings;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /** share of traffic a new version receives while it bakes as candidate */
  readonly canaryWeight: number;
  /** how long a candidate bakes with its alarms OK before promote may make it production */
  readonly bakeMinutes: number;
  readonly promoteEveryMinutes: number;
  /** threshold overrides for the guard's alarm definitions, by definition name */
  readonly alarmThresholds: Readonly<Record<string, number>>;
  readonly logRetentionDays: number;
  /** `retain` keeps the buckets and log groups when the stack is deleted */
  readonly removalPolicy: RemovalMode;
  /** IAM roles besides the platform's own that may write under `registry/` (`maas promote`, `maas rollback`) */
  readonly operatorRoleArns: readonly string[];
  /** days an upload under `incoming/` is kept; its outcome is in the registry long before */
  readonly incomingExpirationDays: number;
  /** browser origins allowed to call the API; empty = no CORS (the default) */
  readonly corsOrigins: readonly string[];
  /** instances kept for rollback alone, so a predict spike can never throttle it */
  readonly rollbackReservedConcurrency: number;
}

export const SETTING_DEFAULTS = {
  stackName: 'OnnxMaas',
  architecture: 'arm64',
  predictMemoryMb: 2048,
  predictTimeoutSeconds: 15,
  predictProvisionedConcurrency: 0,
  explain: 'on',
  ingestMemoryMb: 3008,
  ingestTimeoutSeconds: 300,
  ingestRetryAttempts: 2,
  ingestMaxEventAgeSeconds: 3600,
  /** the advertised 1 GiB upload cap, which the default 3,008 MB ingest function holds (src/ingest/memory.ts) */
  ingestMaxModelMb: 1024,
  controlMemoryMb: 512,
  controlTimeoutSeconds: 30,
  auth: 'iam',
  throttleRateLimit: 100,
  throttleBurstLimit: 200,
  canaryWeight: 0.1,
  bakeMinutes: 30,
  promoteEveryMinutes: 5,
  logRetentionDays: 30,
  removalPolicy: 'retain',
  incomingExpirationDays: 7,
  rollbackReservedConcurrency: 2,
} as const;

/** The retention periods CloudWatch Logs accepts. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

export const CONTEXT_PREFIX = 'maas:';

/** Every context key the stack reads, without the `maas:` prefix. */
export const SETTING_KEYS = [
  'stackName',
  'architecture',
  'predictMemoryMb',
  'predictTimeoutSeconds',
  'predictReservedConcurrency',
  'predictProvisionedConcurrency',
  'predictPreloadModels',
  'explain',
  'explainMaxBudget',
  'ingestMemoryMb',
  'ingestTimeoutSeconds',
  'ingestRetryAttempts',
  'ingestMaxEventAgeSeconds',
  'ingestMaxModelMb',
  'controlMemoryMb',
  'controlTimeoutSeconds',
  'auth',
  'jwtIssuer',
  'jwtAudience',
  'throttleRateLimit',
  'throttleBurstLimit',
  'canaryWeight',
  'bakeMinutes',
  'promoteEveryMinutes',
  'alarmThresholds',
  'logRetentionDays',
  'removalPolicy',
  'operatorRoleArns',
  'incomingExpirationDays',
  'corsOrigins',
  'rollbackReservedConcurrency',
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

/** One or more context values are invalid; the message lists each with what to set instead. */
export class SettingsError extends MaasError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(
      'InvalidSettings',
      `Invalid cdk.json context (fix it in cdk.json "context" or with -c):\n  - ${problems.join('\n  - ')}`,
      { details: { problems } },
    );
    this.problems = problems;
  }
}

/** Reads a context value by full key; `node.tryGetContext` fits. */
export type ContextReader = (key: string) => unknown;

const MAX_LAMBDA_MEMORY_MB = 10_240;
const IAM_ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
const CORS_ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/;
const MAX_LAMBDA_TIMEOUT_SECONDS = 900;
/** API Gateway HTTP APIs stop waiting for an integration after 30 s. */
const MAX_PREDICT_TIMEOUT_SECONDS = 29;

class Reader {
  readonly problems: string[] = [];

  constructor(private readonly read: ContextReader) {}

  private raw(key: SettingKey): unknown {
    const value = this.read(CONTEXT_PREFIX + key);
    return value === '' ? undefined : value;
  }

  private fail(key: SettingKey, value: unknown, expected: string): undefined {
    this.problems.push(`${CONTEXT_PREFIX}${key}=${JSON.stringify(value)}: set it to ${expected}`);
    return undefined;
  }

  choice<T extends string>(key: SettingKey, choices: readonly T[], fallback: T): T {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value === 'string' && (choices as readonly string[]).includes(value))
      return value as T;
    return this.fail(key, value, `one of ${choices.join(', ')}`) ?? fallback;
  }

  number(key: SettingKey, fallback: number, min: number, max: number, integer = true): number {
    return this.optionalNumber(key, min, max, integer) ?? fallback;
  }

  optionalNumber(key: SettingKey, min: number, max: number, integer = true): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    // `-c key=5` arrives as a string, cdk.json as a number: accept both.
    const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    const kind = integer ? 'an integer' : 'a number';
    if (
      typeof parsed !== 'number' ||
      !Number.isFinite(parsed) ||
      (integer && !Number.isInteger(parsed)) ||
      parsed < min ||
      parsed > max
    ) {
      return this.fail(key, value, `${kind} from ${min} to ${max}`);
    }
    return parsed;
  }

  text(key: SettingKey, pattern: RegExp, expected: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value === 'string' && pattern.test(value)) return value;
    return this.fail(key, value, expected);
  }

  list(key: SettingKey): string[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const items = typeof value === 'string' ? value.split(',') : value;
    if (Array.isArray(items) && items.every((item) => typeof item === 'string')) {
      const trimmed = items.map((item: string) => item.trim()).filter((item) => item !== '');
      if (trimmed.length > 0) return trimmed;
    }
    return this.fail(key, value, 'a non-empty list of strings (JSON array, or comma-separated)');
  }

  thresholds(key: SettingKey): Record<string, number> {
    const raw = this.raw(key);
    if (raw === undefined) return {};
    const example = 'a JSON object of alarm name to number, e.g. {"model-errors": 5}';
    let value: unknown = raw;
    if (typeof raw === 'string') {
      try {
        value = JSON.parse(raw);
      } catch {
        return this.fail(key, raw, example) ?? {};
      }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.fail(key, raw, example) ?? {};
    }
    const entries = Object.entries(value);
    if (entries.some(([, v]) => typeof v !== 'number' || !Number.isFinite(v))) {
      return this.fail(key, raw, example) ?? {};
    }
    return Object.fromEntries(entries) as Record<string, number>;
  }

  reportUnknown(keys: readonly string[]): void {
    const known = new Set<string>(SETTING_KEYS.map((key) => CONTEXT_PREFIX + key));
    for (const key of keys) {
      if (key.startsWith(CONTEXT_PREFIX) && !known.has(key)) {
        this.problems.push(
          `${key} is not a setting: remove it, or use one of ${SETTING_KEYS.join(', ')} (prefixed with ${CONTEXT_PREFIX})`,
        );
      }
    }
  }
}

const memory = (r: Reader, key: SettingKey, fallback: number): number =>
  r.number(key, fallback, 128, MAX_LAMBDA_MEMORY_MB);

/**
 * Validates the context and returns the settings, or throws one SettingsError listing every
 * problem. `contextKeys` (all keys present) lets it catch misspelt `maas:` keys.
 */
export const readSettings = (
  read: ContextReader,
  contextKeys: readonly string[] = [],
): MaasSettings => {
  const r = new Reader(read);
  const d = SETTING_DEFAULTS;
  r.reportUnknown(contextKeys);

  const stackName =
    r.text(
      'stackName',
      /^[A-Za-z][A-Za-z0-9-]{0,127}$/,
      'a CloudFormation stack name (letters, digits, hyphens; starting with a letter)',
    ) ?? d.stackName;

  const predictReserved = r.optionalNumber('predictReservedConcurrency', 1, 10_000);
  const predictProvisioned = r.number(
    'predictProvisionedConcurrency',
    d.predictProvisionedConcurrency,
    0,
    10_000,
  );
  if (predictReserved !== undefined && predictProvisioned > predictReserved) {
    r.problems.push(
      `${CONTEXT_PREFIX}predictProvisionedConcurrency=${predictProvisioned} exceeds ${CONTEXT_PREFIX}predictReservedConcurrency=${predictReserved}: provisioned instances must fit in the reservation, lower it or raise the reservation`,
    );
  }

  const preloadModels = r.list('predictPreloadModels') ?? [];
  for (const name of preloadModels) {
    if (!isValidModelName(name)) {
      r.problems.push(
        `${CONTEXT_PREFIX}predictPreloadModels names "${name}", which is not a model name (a-z, 0-9, '.', '_', '-', 1 to 63 characters)`,
      );
    }
  }
  if (preloadModels.length > 0 && predictProvisioned === 0) {
    r.problems.push(
      `${CONTEXT_PREFIX}predictPreloadModels is set but ${CONTEXT_PREFIX}predictProvisionedConcurrency is 0: models are preloaded only by provisioned instances, set it to 1 or more, or remove the list`,
    );
  }

  const ingestMemoryMb = memory(r, 'ingestMemoryMb', d.ingestMemoryMb);
  const ingestMaxModelMb = r.number('ingestMaxModelMb', d.ingestMaxModelMb, 1, 2048);
  const neededMb = ingestMemoryNeededMb(ingestMaxModelMb);
  if (neededMb > ingestMemoryMb) {
    r.problems.push(
      `${CONTEXT_PREFIX}ingestMaxModelMb=${ingestMaxModelMb} needs an ingest function of ${neededMb} MB ` +
        `(${INGEST_MEMORY.fixedMb} MB fixed + ${INGEST_MEMORY.perModelByte} × the cap, measured by ` +
        `bench/ingest-memory.ts), but ${CONTEXT_PREFIX}ingestMemoryMb is ${ingestMemoryMb}: raise ` +
        `${CONTEXT_PREFIX}ingestMemoryMb to ${neededMb} or more (Lambda allows up to ${MAX_LAMBDA_MEMORY_MB}), ` +
        `or lower ${CONTEXT_PREFIX}ingestMaxModelMb to ${largestModelMb(ingestMemoryMb)}`,
    );
  }
  const explain = r.choice('explain', ['on', 'off'] as const, d.explain);
  const explainMaxBudget = r.optionalNumber('explainMaxBudget', 2, 1 << 20);

  const auth = r.choice('auth', ['iam', 'jwt'] as const, d.auth);
  const issuer = r.text(
    'jwtIssuer',
    /^https:\/\/[^\s]+$/,
    'the https URL of your identity provider (the JWT "iss" claim)',
  );
  const audience = r.list('jwtAudience');
  if (auth === 'jwt' && (issuer === undefined || audience === undefined)) {
    r.problems.push(
      `${CONTEXT_PREFIX}auth=jwt needs ${CONTEXT_PREFIX}jwtIssuer (https URL of the issuer) and ${CONTEXT_PREFIX}jwtAudience (the accepted "aud" values); set both, or use ${CONTEXT_PREFIX}auth=iam`,
    );
  }
  if (auth === 'iam' && (issuer !== undefined || audience !== undefined)) {
    r.problems.push(
      `${CONTEXT_PREFIX}jwtIssuer/${CONTEXT_PREFIX}jwtAudience are set but ${CONTEXT_PREFIX}auth is iam: set ${CONTEXT_PREFIX}auth=jwt to use them, or remove them`,
    );
  }

  const rateLimit = r.number('throttleRateLimit', d.throttleRateLimit, 1, 1_000_000);
  const burstLimit = r.number('throttleBurstLimit', d.throttleBurstLimit, 1, 1_000_000);

  const logRetentionDays = r.number('logRetentionDays', d.logRetentionDays, 1, 3653);
  if (!(LOG_RETENTION_DAYS as readonly number[]).includes(logRetentionDays)) {
    r.problems.push(
      `${CONTEXT_PREFIX}logRetentionDays=${logRetentionDays}: set it to one of ${LOG_RETENTION_DAYS.join(', ')} (the periods CloudWatch Logs accepts)`,
    );
  }

  const operatorRoleArns = r.list('operatorRoleArns') ?? [];
  for (const arn of operatorRoleArns) {
    if (!IAM_ROLE_ARN.test(arn)) {
      r.problems.push(
        `${CONTEXT_PREFIX}operatorRoleArns: ${JSON.stringify(arn)} is not an IAM role ARN; use arn:aws:iam::<12-digit account>:role/<name>`,
      );
    }
  }
  const corsOrigins = r.list('corsOrigins') ?? [];
  for (const origin of corsOrigins) {
    if (origin !== '*' && !CORS_ORIGIN.test(origin)) {
      r.problems.push(
        `${CONTEXT_PREFIX}corsOrigins: ${JSON.stringify(origin)} is not an origin; use scheme://host[:port] with no path (https://app.example.com), or *`,
      );
    }
  }
  // Ingest records an upload's outcome within its event age (6 h at most, retries included):
  // one day is always past it.
  const incomingExpirationDays = r.number(
    'incomingExpirationDays',
    d.incomingExpirationDays,
    1,
    3650,
  );

  const settings: MaasSettings = {
    stackName,
    architecture: r.choice('architecture', ['arm64', 'x86_64'] as const, d.architecture),
    predict: {
      memoryMb: memory(r, 'predictMemoryMb', d.predictMemoryMb),
      timeoutSeconds: r.number(
        'predictTimeoutSeconds',
        d.predictTimeoutSeconds,
        1,
        MAX_PREDICT_TIMEOUT_SECONDS,
      ),
      ...(predictReserved === undefined ? {} : { reservedConcurrency: predictReserved }),
      provisionedConcurrency: predictProvisioned,
      preloadModels,
      explain: explain === 'on',
      ...(explainMaxBudget === undefined ? {} : { explainMaxBudget }),
    },
    ingest: {
      memoryMb: ingestMemoryMb,
      maxModelMb: ingestMaxModelMb,
      timeoutSeconds: r.number(
        'ingestTimeoutSeconds',
        d.ingestTimeoutSeconds,
        1,
        MAX_LAMBDA_TIMEOUT_SECONDS,
      ),
      retryAttempts: r.number('ingestRetryAttempts', d.ingestRetryAttempts, 0, 2),
      maxEventAgeSeconds: r.number(
        'ingestMaxEventAgeSeconds',
        d.ingestMaxEventAgeSeconds,
        60,
        21_600,
      ),
    },
    control: {
      memoryMb: memory(r, 'controlMemoryMb', d.controlMemoryMb),
      timeoutSeconds: r.number(
        'controlTimeoutSeconds',
        d.controlTimeoutSeconds,
        1,
        MAX_LAMBDA_TIMEOUT_SECONDS,
      ),
    },
    auth:
      auth === 'jwt' && issuer !== undefined && audience !== undefined
        ? { mode: 'jwt', issuer, audience }
        : { mode: 'iam' },
    throttle: { rateLimit, burstLimit },
    canaryWeight: r.number('canaryWeight', d.canaryWeight, 0, 1, false),
    bakeMinutes: r.number('bakeMinutes', d.bakeMinutes, 0, 7 * 24 * 60),
    promoteEveryMinutes: r.number('promoteEveryMinutes', d.promoteEveryMinutes, 1, 24 * 60),
    alarmThresholds: r.thresholds('alarmThresholds'),
    logRetentionDays,
    removalPolicy: r.choice('removalPolicy', ['retain', 'destroy'] as const, d.removalPolicy),
    operatorRoleArns,
    incomingExpirationDays,
    corsOrigins,
    rollbackReservedConcurrency: r.number(
      'rollbackReservedConcurrency',
      d.rollbackReservedConcurrency,
      1,
      1000,
    ),
  };

  if (r.problems.length > 0) throw new SettingsError(r.problems);
  return settings;
};
