import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULTS } from '../src/config/index.ts';
import { MaasError } from '../src/errors/index.ts';

/**
 * `$MAAS_HOME/stack.json`: where a running local stack listens, so a second terminal (the CLI, the
 * guard demo, the console) finds it on any ports without flags. Written once the stack is up,
 * removed on a clean stop; a file left by a stack that was killed names a pid that is gone.
 */
export interface StackInfo {
  /** the `npm start` process */
  pid: number;
  /** the data directory, absolute */
  home: string;
  /** the HTTP API, e.g. `http://127.0.0.1:3000` */
  api: string;
  /** the S3 endpoint, e.g. `http://127.0.0.1:4569` */
  s3: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** the operator console, once it runs */
  console?: string;
}

export const STACK_INFO_FILE = 'stack.json';

export const stackInfoPath = (home: string): string => join(home, STACK_INFO_FILE);

/** stack.json exists but cannot be used; the message names the file and what to do. */
export class StackInfoError extends MaasError {
  constructor(file: string, problem: string, cause?: unknown) {
    super(
      'InvalidStackInfo',
      `${file} ${problem}: it is written by \`npm start\`; delete it and restart the stack, or pass --endpoint and --api-url`,
      { cause, details: { file } },
    );
  }
}

/** Atomic (a temporary file renamed over it), so a reader never sees half a file. */
export async function writeStackInfo(info: StackInfo): Promise<string> {
  const file = stackInfoPath(info.home);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(info, null, 2)}\n`);
  await rename(temporary, file);
  return file;
}

/** Removes the file if it still describes the process `pid` (a newer stack may have replaced it). */
export async function removeStackInfo(home: string, pid: number = process.pid): Promise<void> {
  const file = stackInfoPath(home);
  try {
    const found = readStackInfo(home);
    if (found?.info.pid !== pid) return;
  } catch {
    // An unreadable file is not ours to keep either.
  }
  await rm(file, { force: true });
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const httpUrl = (value: unknown): value is string =>
  typeof value === 'string' && URL.canParse(value) && /^https?:$/.test(new URL(value).protocol);

const text = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** Whether process `pid` exists on this machine (EPERM: it does, under another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The stack.json under `home`: `undefined` when there is none, `live: false` when the process that
 * wrote it is gone (the stack was killed). A file that is not a stack.json is a StackInfoError.
 */
export function readStackInfo(home: string): { info: StackInfo; live: boolean } | undefined {
  const file = stackInfoPath(home);
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StackInfoError(file, `cannot be read (${(err as Error).message})`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new StackInfoError(file, `is not JSON (${(err as Error).message})`, err);
  }
  const info = validate(file, parsed);
  return { info, live: isAlive(info.pid) };
}

function validate(file: string, value: unknown): StackInfo {
  if (!isRecord(value)) throw new StackInfoError(file, 'is not a JSON object');
  const problems: string[] = [];
  const { pid, home, api, s3, bucket, region, credentials, console } = value;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) {
    problems.push('"pid" must be a positive integer');
  }
  if (!text(home)) problems.push('"home" must be a directory path');
  if (!httpUrl(api)) problems.push('"api" must be an http(s) URL');
  if (!httpUrl(s3)) problems.push('"s3" must be an http(s) URL');
  if (!text(bucket)) problems.push('"bucket" must be a bucket name');
  if (!text(region)) problems.push('"region" must be a region name');
  if (
    !isRecord(credentials) ||
    !text(credentials.accessKeyId) ||
    !text(credentials.secretAccessKey)
  ) {
    problems.push('"credentials" must be {"accessKeyId": ..., "secretAccessKey": ...}');
  }
  if (console !== undefined && !httpUrl(console)) {
    problems.push('"console" must be an http(s) URL when present');
  }
  if (problems.length > 0) throw new StackInfoError(file, `is not valid: ${problems.join('; ')}`);
  const creds = credentials as { accessKeyId: string; secretAccessKey: string };
  return {
    pid: pid as number,
    home: home as string,
    api: api as string,
    s3: s3 as string,
    bucket: bucket as string,
    region: region as string,
    credentials: { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
    ...(console === undefined ? {} : { console: console as string }),
  };
}

/** A word a POSIX shell reads back unchanged. */
const shellWord = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * The banner's upload commands, runnable pasted into a shell in the project directory: `maas`
 * finds the stack through stack.json (MAAS_HOME named when it is not the default), and the aws CLI
 * gets the local S3's credentials and region in its environment.
 */
export const uploadCommands = (info: StackInfo): string[] => {
  const home =
    resolve(info.home) === resolve(DEFAULTS.home) ? '' : `MAAS_HOME=${shellWord(info.home)} `;
  return [
    `${home}npx maas push model.onnx --model mymodel`,
    `AWS_ACCESS_KEY_ID=${shellWord(info.credentials.accessKeyId)} AWS_SECRET_ACCESS_KEY=${shellWord(info.credentials.secretAccessKey)} AWS_DEFAULT_REGION=${shellWord(info.region)} ` +
      `aws s3 cp model.onnx s3://${info.bucket}/incoming/mymodel/ --endpoint-url ${info.s3}`,
  ];
};
