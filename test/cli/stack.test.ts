import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_OUTPUTS } from '../../infra/outputs.ts';
import {
  irisSamples,
  type PredictStack,
  type Run,
  runMaas,
  startPredictStack,
} from '../support/cli-predict.ts';

interface Captured {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let stack: PredictStack;
let work: string;
let requestFile: string;
let outputsFile: string;
/** stands in for API Gateway: records each request as it arrives, then passes it to the local API */
let gateway: Server;
let gatewayUrl: string;
const captured: Captured[] = [];
/**
 * What the gateway's authorizer accepts: anything (`open`), only `Bearer ${GOOD_TOKEN}` (`jwt`,
 * 401 otherwise, as a JWT authorizer answers), or no bearer token (`iam`, 403 for one, as IAM
 * auth refuses a request it cannot verify).
 */
let authorizer: 'open' | 'jwt' | 'iam' = 'open';
const GOOD_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtbCJ9.c2lnbmF0dXJl';

const refusal = (headers: IncomingHttpHeaders): { status: number; message: string } | undefined => {
  const bearer = headers.authorization?.startsWith('Bearer ') === true;
  if (authorizer === 'jwt' && headers.authorization !== `Bearer ${GOOD_TOKEN}`) {
    return { status: 401, message: 'Unauthorized' };
  }
  if (authorizer === 'iam' && bearer) return { status: 403, message: 'Forbidden' };
  return undefined;
};

const startGateway = async (upstream: string): Promise<Server> => {
  const server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      captured.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: body.toString('utf8'),
      });
      const refused = refusal(req.headers);
      if (refused !== undefined) {
        res.writeHead(refused.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: refused.message }));
        return;
      }
      const answer = await fetch(`${upstream}${req.url ?? ''}`, {
        method: req.method ?? 'GET',
        headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
        ...(body.byteLength === 0 ? {} : { body }),
      });
      const headers = Object.fromEntries(answer.headers);
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      res.writeHead(answer.status, headers);
      res.end(Buffer.from(await answer.arrayBuffer()));
    })().catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
};

/**
 * A deployed stack's view of the world: the outputs file names the gateway and the bucket, the
 * SDK reaches S3 through AWS_ENDPOINT_URL_S3 with credentials from the environment. The local
 * defaults point at ports where nothing listens, so only the outputs file can lead anywhere.
 */
const stackEnv = (): Record<string, string | undefined> => ({
  AWS_ENDPOINT_URL_S3: stack.s3.s3.endpoint,
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_REGION: 'eu-west-3',
  MAAS_S3_PORT: '1',
  MAAS_BUCKET: 'not-the-stack-bucket',
  MAAS_TOKEN: undefined,
  PORT: '1',
});

const maas = (
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
) => runMaas(args, { ...options, env: { ...stackEnv(), ...options.env } });

const writeOutputs = async (name: string, content: unknown): Promise<string> => {
  const file = join(work, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
};

const deployedOutputs = () => ({
  MaasStack: {
    [STACK_OUTPUTS.apiUrl]: `${gatewayUrl}/`,
    [STACK_OUTPUTS.bucketName]: stack.s3.s3.bucket,
    [STACK_OUTPUTS.dashboardUrl]:
      'https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=MaasStack',
    [STACK_OUTPUTS.region]: 'us-east-1',
  },
  CDKToolkit: { BucketName: 'cdk-assets' },
});

beforeAll(async () => {
  stack = await startPredictStack();
  gateway = await startGateway(stack.api.url);
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
  work = await mkdtemp(join(tmpdir(), 'maas-stack-'));
  requestFile = join(work, 'request.json');
  await writeFile(requestFile, JSON.stringify((await irisSamples())[0]));
  outputsFile = await writeOutputs('outputs.json', deployedOutputs());
  await writeOutputs('cdk-outputs.json', deployedOutputs());
});
afterAll(async () => {
  await new Promise<void>((resolve) => (gateway ? gateway.close(() => resolve()) : resolve()));
  await stack?.stop();
  await rm(work, { recursive: true, force: true });
});

const expectSuccess = (run: Run) => {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
};

describe('maas --stack', () => {
  it('lists models from the bucket named in the outputs file, with the credential chain', async () => {
    const [named, byDefault] = await Promise.all([
      maas(['--stack', outputsFile, 'models', '--json']),
      // `--stack` alone reads ./cdk-outputs.json and leaves `models` as the command
      maas(['--stack', 'models', '--json'], { cwd: work }),
    ]);
    for (const run of [named, byDefault]) {
      expectSuccess(run);
      expect(JSON.parse(run.stdout)).toEqual([{ name: 'iris', production: 1 }]);
    }
  });

  it('signs predict requests with SigV4 for execute-api in the stack region', async () => {
    captured.length = 0;
    const run = await maas(['predict', 'iris', '--data', requestFile, '--stack', outputsFile]);
    expectSuccess(run);
    expect(run.stdout).toMatch(/^version:\s+v1 \(production\)$/m);
    expect(run.stdout).toMatch(/^probabilities\s+FP32\s+\[1, 3\]\s+0\.997195, /m);

    expect(captured).toHaveLength(1);
    const request = captured[0] as Captured;
    expect(request.path).toBe('/v2/models/iris/infer');
    const amzDate = String(request.headers['x-amz-date']);
    expect(amzDate).toMatch(/^\d{8}T\d{6}Z$/);
    expect(request.headers.authorization).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=S3RVER/${amzDate.slice(0, 8)}/us-east-1/execute-api/aws4_request, ` +
          'SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$',
      ),
    );
    // The signature covers what arrived: the same request signed again at the same instant
    // gives the same Authorization.
    const url = new URL(gatewayUrl);
    const resigned = await new SignatureV4({
      service: 'execute-api',
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      sha256: Sha256,
    }).sign(
      {
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        port: Number(url.port),
        path: request.path,
        query: {},
        headers: {
          host: String(request.headers.host),
          'content-type': String(request.headers['content-type']),
        },
        body: request.body,
      },
      {
        signingDate: new Date(
          `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
        ),
      },
    );
    expect(resigned.headers.authorization).toBe(request.headers.authorization);
  });

  it('sends MAAS_TOKEN as a bearer token instead of a signature, for a stack with JWT auth', async () => {
    authorizer = 'jwt';
    try {
      captured.length = 0;
      const run = await maas(['predict', 'iris', '--data', requestFile, '--stack', outputsFile], {
        env: { MAAS_TOKEN: ` ${GOOD_TOKEN}\n` },
      });
      expectSuccess(run);
      expect(run.stdout).toMatch(/^probabilities\s+FP32\s+\[1, 3\]\s+0\.997195, /m);
      expect(captured).toHaveLength(1);
      expect(captured[0]?.headers.authorization).toBe(`Bearer ${GOOD_TOKEN}`);
      expect(captured[0]?.headers['x-amz-date']).toBeUndefined();
    } finally {
      authorizer = 'open';
    }
  });

  it('says what to send when the gateway refuses the credentials', async () => {
    const predict = (env: Record<string, string | undefined>) =>
      maas(['predict', 'iris', '--data', requestFile, '--stack', outputsFile], { env });
    try {
      authorizer = 'jwt';
      const [unsigned, badToken] = await Promise.all([
        predict({ MAAS_TOKEN: undefined }),
        predict({ MAAS_TOKEN: 'expired' }),
      ]);
      authorizer = 'iam';
      const wrongMode = await predict({ MAAS_TOKEN: GOOD_TOKEN });
      for (const run of [unsigned, badToken, wrongMode]) {
        expect(run.code).toBe(1);
        expect(run.stdout).toBe('');
      }
      expect(unsigned.stderr).toContain(
        'POST /v2/models/iris/infer answered 401 Unauthorized: {"message":"Unauthorized"}; the API of stack MaasStack may authorize with JWT (maas:auth=jwt): set MAAS_TOKEN to a token from its issuer',
      );
      expect(badToken.stderr).toContain(
        'answered 401 Unauthorized: {"message":"Unauthorized"}; the token in MAAS_TOKEN was refused: check its issuer, audience and expiry',
      );
      expect(wrongMode.stderr).toContain(
        'answered 403 Forbidden: {"message":"Forbidden"}; the API of stack MaasStack may authorize with IAM (the default): unset MAAS_TOKEN to sign with AWS credentials',
      );
    } finally {
      authorizer = 'open';
    }
  });

  it('sends no signature to the local stack', async () => {
    captured.length = 0;
    const run = await maas(['predict', 'iris', '--data', requestFile], {
      env: { PORT: new URL(gatewayUrl).port },
    });
    expectSuccess(run);
    expect(captured).toHaveLength(1);
    expect(captured[0]?.headers.authorization).toBeUndefined();
  });

  it('picks a stack by name when the file holds several', async () => {
    const several = await writeOutputs('several.json', {
      ...deployedOutputs(),
      MaasStaging: { ...deployedOutputs().MaasStack, BucketName: 'staging-bucket' },
    });
    const [ambiguous, chosen] = await Promise.all([
      maas(['--stack', several, 'models']),
      maas(['--stack', several, '--stack-name', 'MaasStack', 'models', '--json']),
    ]);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toContain(
      'has several stacks with outputs ApiUrl and BucketName (MaasStack, MaasStaging): choose one with --stack-name',
    );
    expectSuccess(chosen);
    expect(JSON.parse(chosen.stdout)).toEqual([{ name: 'iris', production: 1 }]);
  });

  it('explains an outputs file it cannot use', async () => {
    const [notJson, noStack, badUrl] = await Promise.all([
      writeOutputs('truncated.json', '{"MaasStack": {"ApiUrl": '),
      writeOutputs('other.json', { CDKToolkit: { BucketName: 'cdk-assets' }, Empty: {} }),
      writeOutputs('bad-url.json', {
        MaasStack: { ApiUrl: 'not a url', BucketName: 'b' },
      }),
    ]);
    const runs = await Promise.all([
      maas(['--stack', join(work, 'absent.json'), 'models']),
      maas(['--stack', notJson, 'models']),
      maas(['--stack', noStack, 'predict', 'iris', '--data', requestFile]),
      maas(['--stack', badUrl, 'predict', 'iris', '--data', requestFile]),
    ]);
    const [missing, malformed, none, invalidUrl] = runs;
    expect(missing?.stderr).toContain(
      `no stack outputs file at ${join(work, 'absent.json')}: deploy with \`npx cdk deploy --outputs-file cdk-outputs.json\``,
    );
    expect(malformed?.stderr).toMatch(/truncated\.json is not JSON \(.+\): pass the file/);
    expect(none?.stderr).toContain(
      'has no stack with outputs ApiUrl and BucketName; found CDKToolkit (BucketName); Empty (no outputs)',
    );
    expect(invalidUrl?.stderr).toMatch(
      /ApiUrl of stack MaasStack in .+bad-url\.json is not an http\(s\) URL: "not a url"/,
    );
    for (const run of runs) {
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
    }
  });

  it('says how to provide credentials when the chain finds none', async () => {
    const home = join(work, 'empty-home');
    const run = await maas(['predict', 'iris', '--data', requestFile, '--stack', outputsFile], {
      env: {
        AWS_ACCESS_KEY_ID: undefined,
        AWS_SECRET_ACCESS_KEY: undefined,
        HOME: home,
        AWS_CONFIG_FILE: join(home, 'config'),
        AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
        AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('no AWS credentials to sign requests to stack MaasStack');
    expect(run.stderr).toContain('set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  });
});
