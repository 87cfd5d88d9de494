import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  type GuardAlarmDefinition,
  InvalidAlarmDefinitionError,
  validateAlarmDefinitions,
} from '../../infra/guard.ts';
import { readSettings, SETTING_DEFAULTS, SettingsError } from '../../infra/settings.ts';
import { DEFAULT_ALARM_DEFINITIONS } from '../../src/guard/index.ts';

const fromContext = (context: Record<string, unknown>) =>
  readSettings((key) => context[key], Object.keys(context));

const problemsOf = (context: Record<string, unknown>): readonly string[] => {
  try {
    fromContext(context);
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  throw new Error('expected a SettingsError');
};

describe('deployment settings', () => {
  it('defaults to arm64, IAM auth, retained data and the documented limits', () => {
    const settings = fromContext({});
    expect(settings).toMatchObject({
      stackName: SETTING_DEFAULTS.stackName,
      architecture: 'arm64',
      auth: { mode: 'iam' },
      removalPolicy: 'retain',
      canaryWeight: 0.1,
      logRetentionDays: 30,
      predict: { memoryMb: 2048, timeoutSeconds: 15, provisionedConcurrency: 0, explain: true },
      ingest: { retryAttempts: 2, maxEventAgeSeconds: 3600 },
    });
    expect(settings.predict.reservedConcurrency).toBeUndefined();
    expect(settings.predict.explainMaxBudget).toBeUndefined();
  });

  it('turns explanations off and caps their budget, refusing values that are neither', () => {
    expect(
      fromContext({ 'maas:explain': 'off', 'maas:explainMaxBudget': '256' }).predict,
    ).toMatchObject({ explain: false, explainMaxBudget: 256 });
    const problems = problemsOf({ 'maas:explain': 'false', 'maas:explainMaxBudget': 1 });
    expect(problems.join('\n')).toMatch(/maas:explain="false": set it to one of on, off/);
    expect(problems.join('\n')).toMatch(/maas:explainMaxBudget=1: set it to an integer from 2/);
  });

  it('keeps uploads 7 days, no CORS, no operator role and 2 instances for rollback by default', () => {
    expect(fromContext({})).toMatchObject({
      incomingExpirationDays: 7,
      corsOrigins: [],
      operatorRoleArns: [],
      rollbackReservedConcurrency: 2,
    });
  });

  it('reads operator roles, CORS origins and upload expiry, refusing what AWS would refuse', () => {
    const operator = 'arn:aws:iam::123456789012:role/maas-operator';
    expect(
      fromContext({
        'maas:operatorRoleArns': [operator],
        'maas:corsOrigins': 'https://app.example.com, http://localhost:5173',
        'maas:incomingExpirationDays': 3,
      }),
    ).toMatchObject({
      operatorRoleArns: [operator],
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
      incomingExpirationDays: 3,
    });
    const problems = problemsOf({
      'maas:operatorRoleArns': 'arn:aws:iam::123456789012:user/alice',
      'maas:corsOrigins': 'https://app.example.com/path',
      'maas:incomingExpirationDays': 0,
      'maas:rollbackReservedConcurrency': 0,
    });
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/operatorRoleArns.*not an IAM role ARN/);
    expect(problems.join('\n')).toMatch(/corsOrigins.*scheme:\/\/host\[:port\]/);
    expect(problems.join('\n')).toMatch(/incomingExpirationDays=0: set it to an integer from 1/);
    expect(problems.join('\n')).toMatch(/rollbackReservedConcurrency=0/);
  });

  it('accepts values typed in cdk.json and strings given with -c alike', () => {
    const typed = fromContext({ 'maas:predictMemoryMb': 3008, 'maas:canaryWeight': 0.25 });
    const strings = fromContext({ 'maas:predictMemoryMb': '3008', 'maas:canaryWeight': '0.25' });
    expect(strings).toEqual(typed);
    expect(typed.predict.memoryMb).toBe(3008);
  });

  it('configures JWT auth from issuer and a comma-separated or JSON audience', () => {
    const base = { 'maas:auth': 'jwt', 'maas:jwtIssuer': 'https://issuer.example.com/' };
    expect(fromContext({ ...base, 'maas:jwtAudience': 'a, b' }).auth).toEqual({
      mode: 'jwt',
      issuer: 'https://issuer.example.com/',
      audience: ['a', 'b'],
    });
    expect(fromContext({ ...base, 'maas:jwtAudience': ['a'] }).auth).toMatchObject({
      audience: ['a'],
    });
  });

  it('lists every invalid setting in one error, each with what to set instead', () => {
    const problems = problemsOf({
      'maas:architecture': 'x86',
      'maas:predictTimeoutSeconds': 45,
      'maas:canaryWeight': '1.5',
      'maas:logRetentionDays': 10,
      'maas:removalPolicy': 'snapshot',
      'maas:predictMemoryMb': 'lots',
    });
    expect(problems).toHaveLength(6);
    expect(problems.join('\n')).toMatch(/maas:architecture="x86": set it to one of arm64, x86_64/);
    expect(problems.join('\n')).toMatch(
      /maas:predictTimeoutSeconds=45: set it to an integer from 1 to 29/,
    );
    expect(problems.join('\n')).toMatch(/maas:canaryWeight="1.5": set it to a number from 0 to 1/);
    expect(problems.join('\n')).toMatch(
      /maas:logRetentionDays=10: set it to one of 1, 3, 5, 7, 14, 30/,
    );
    expect(problems.join('\n')).toMatch(
      /maas:removalPolicy="snapshot": set it to one of retain, destroy/,
    );
    expect(problems.join('\n')).toMatch(
      /maas:predictMemoryMb="lots": set it to an integer from 128/,
    );
  });

  it('names a misspelt maas: key instead of silently ignoring it', () => {
    expect(problemsOf({ 'maas:archtecture': 'arm64' })).toEqual([
      expect.stringMatching(
        /^maas:archtecture is not a setting: remove it, or use one of stackName, architecture/,
      ),
    ]);
  });

  it('requires issuer and audience for JWT, and refuses them without it', () => {
    expect(problemsOf({ 'maas:auth': 'jwt' })).toEqual([
      expect.stringMatching(/maas:auth=jwt needs maas:jwtIssuer .* and maas:jwtAudience/),
    ]);
    expect(
      problemsOf({
        'maas:auth': 'jwt',
        'maas:jwtIssuer': 'http://plain.example.com',
        'maas:jwtAudience': 'maas',
      }),
    ).toEqual([
      expect.stringMatching(/maas:jwtIssuer="http:\/\/plain.example.com": set it to the https URL/),
      expect.stringMatching(/maas:auth=jwt needs/),
    ]);
    expect(problemsOf({ 'maas:jwtAudience': 'maas' })).toEqual([
      expect.stringMatching(/are set but maas:auth is iam: set maas:auth=jwt to use them/),
    ]);
  });

  it('refuses more provisioned instances than the reservation holds', () => {
    expect(
      problemsOf({ 'maas:predictReservedConcurrency': 2, 'maas:predictProvisionedConcurrency': 3 }),
    ).toEqual([
      expect.stringMatching(
        /predictProvisionedConcurrency=3 exceeds .*predictReservedConcurrency=2/,
      ),
    ]);
  });

  it('reads alarm threshold overrides as an object or a JSON string', () => {
    expect(fromContext({ 'maas:alarmThresholds': { latency: 800 } }).alarmThresholds).toEqual({
      latency: 800,
    });
    expect(fromContext({ 'maas:alarmThresholds': '{"latency": 800}' }).alarmThresholds).toEqual({
      latency: 800,
    });
    expect(problemsOf({ 'maas:alarmThresholds': '{"latency": "fast"}' })).toEqual([
      expect.stringMatching(
        /maas:alarmThresholds=.*: set it to a JSON object of alarm name to number/,
      ),
    ]);
  });
});

describe('the CDK app', () => {
  it('stops before building anything when a setting is wrong, printing what to set instead', async () => {
    const run = promisify(execFile)('npx', ['tsx', 'infra/app.ts'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      // How the CDK CLI hands cdk.json and -c context to the app.
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ 'maas:architecture': 'x86' }) },
    });
    const failure = await run.then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(1);
    // npm itself may warn about the project's .npmrc (onnxruntime-node-install) on every npx run
    const stderr = failure?.stderr
      .split('\n')
      .filter((line) => !line.startsWith('npm warn'))
      .join('\n');
    expect(stderr).toBe(
      'Invalid cdk.json context (fix it in cdk.json "context" or with -c):\n  - maas:architecture="x86": set it to one of arm64, x86_64\n',
    );
  });
});

describe('guard rules as CloudWatch alarms', () => {
  const [base] = DEFAULT_ALARM_DEFINITIONS;
  if (base === undefined) throw new Error('src/guard defines no rule');

  const problemsOf = (definitions: readonly GuardAlarmDefinition[]): string => {
    try {
      validateAlarmDefinitions(definitions);
    } catch (err) {
      if (err instanceof InvalidAlarmDefinitionError) return err.message;
      throw err;
    }
    return '';
  };

  it("accepts the guard's own rules", () => {
    expect(problemsOf(DEFAULT_ALARM_DEFINITIONS)).toBe('');
  });

  it('rejects what a Metrics Insights alarm cannot evaluate, naming each rule', () => {
    const message = problemsOf([
      { ...base, name: 'local-scale', periodSeconds: 1 },
      { ...base, name: 'long', periodSeconds: 3600, evaluationPeriods: 4, datapointsToAlarm: 1 },
      { ...base, name: 'odd', evaluationPeriods: 2, datapointsToAlarm: 3 },
      { ...base, name: 'single', query: 'SELECT AVG(Latency) FROM "Maas"' },
      { ...base, name: 'Bad Name' },
    ]);
    expect(message).toMatch(/"local-scale": periodSeconds 1 must be a multiple of 60/);
    expect(message).toMatch(/"long": .* exceeds the 3 hours/);
    expect(message).toMatch(
      /"odd": datapointsToAlarm must be an integer from 1 to evaluationPeriods \(2\)/,
    );
    expect(message).toMatch(/"single": the query must be a Metrics Insights query with GROUP BY/);
    expect(message).toMatch(/"Bad Name": the name must be/);
  });

  it('rejects two rules with the same name', () => {
    expect(problemsOf([base, base])).toMatch(/duplicate rule names: model-errors/);
  });
});
