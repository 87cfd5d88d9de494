import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  healthyModel,
  inferBody,
  lookupModel,
  sampleRow,
  trafficRow,
} from '../../local/guard/demo-models.ts';
import { LOCAL_S3_CREDENTIALS, LOCAL_S3_REGION, startLocalS3 } from '../../local/s3/index.ts';
import { GENERATED_DIR } from '../../models/generate.ts';
import { keys, Registry } from '../../src/registry/index.ts';
import { normalizeEtag } from '../../src/storage/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import { mulberry32 } from '../../src/util/index.ts';
import { registerVersion, setAliases } from '../support/registry.ts';

/**
 * The console in a real Chromium against `npm start`: the example models, an upload through the
 * page, live charts, promote and rollback through the page, then a failing canary that the page
 * shows breaching and rolled back without a reload.
 *
 * Debian's chromium is driven by playwright-core (no browser download). Without it the test
 * fails under CI (`.ci/run` installs it) and is skipped on a developer machine.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.MAAS_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
/** `MAAS_CONSOLE_SCREENSHOTS=1` refreshes the committed screenshots under docs/console/ */
const SHOTS = process.env.MAAS_CONSOLE_SCREENSHOTS === '1';
const BUCKET = 'maas-models';
const READY = 'Ctrl-C stops everything.';
const MODEL = 'console-demo';

let home: string;
let shots: string;
let stack: ChildProcess | undefined;
let output = '';
let consoleUrl = '';
let apiUrl = '';
let s3Url = '';
let browser: BrowserContext | undefined;
let page: Page;
let registry: Registry;
let destroyClient: () => void = () => undefined;

/** The examples registered beforehand, so the stack starts without ingesting them again. */
async function seedHome(directory: string): Promise<void> {
  const s3 = await startLocalS3({ port: 0, directory: join(directory, 's3'), bucket: BUCKET });
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: LOCAL_S3_REGION,
    credentials: LOCAL_S3_CREDENTIALS,
  });
  try {
    const seeded = new Registry(new S3ObjectStore({ bucket: BUCKET, client }));
    for (const model of ['iris', 'encoder']) {
      const bytes = new Uint8Array(await readFile(join(GENERATED_DIR, `${model}.onnx`)));
      const { version } = await registerVersion(seeded, model, bytes);
      await setAliases(seeded, model, { production: version });
    }
  } finally {
    client.destroy();
    await s3.close();
  }
}

async function startStack(): Promise<void> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), 'local/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      MAAS_S3_PORT: '0',
      MAAS_CONSOLE_PORT: '0',
      MAAS_HOME: home,
      MAAS_WORKERS: '2',
      // 3-second periods: the breaching periods stay on screen for a few seconds before rollback
      MAAS_GUARD_TIME_SCALE: String(1 / 20),
      MAAS_GUARD_MIN_REQUESTS: '5',
      // candidates bake for an hour: nothing is promoted behind the test's back
      MAAS_BAKE_MINUTES: '60',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stack = child;
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const deadline = Date.now() + 120_000;
  while (!output.includes(READY)) {
    if (child.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm start did not get ready:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  consoleUrl = /console {3}(http:\/\/\S+)/.exec(output)?.[1] ?? '';
  apiUrl = /HTTP API {2}(http:\/\/\S+)/.exec(output)?.[1] ?? '';
  s3Url = /S3 {8}(http:\/\/\S+)/.exec(output)?.[1] ?? '';
}

/** An upload straight to the bucket, as `aws s3 cp` would; resolves with the version. */
async function uploadDirect(file: string, bytes: Uint8Array, metadata: Record<string, string>) {
  const key = keys.incomingModel(MODEL, file);
  const random = mulberry32(bytes.byteLength);
  const samples = [1, 2, 3].map(() => JSON.parse(inferBody(sampleRow(random))) as unknown);
  await registry.store.put(keys.samplesFor(key), JSON.stringify(samples));
  const { etag } = await registry.store.put(key, bytes, {
    metadata: { 'maas-quantize': 'off', ...metadata },
  });
  const ref = { sourceKey: key, etag: normalizeEtag(etag) };
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const outcome = await registry.findUploadOutcome(MODEL, ref);
    if (outcome?.version !== undefined) return outcome.version;
    if (outcome?.event === 'rejected') throw new Error(`${key} was rejected: ${outcome.reason}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${key} was not ingested in time`);
}

/** Clients sending V2 requests to the model until stopped. */
function traffic(clients: number): { stop(): Promise<void> } {
  let running = true;
  const random = mulberry32(7);
  const worker = async () => {
    while (running) {
      const res = await fetch(`${apiUrl}/v2/models/${MODEL}/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: inferBody(trafficRow(random)),
      }).catch(() => undefined);
      await res?.arrayBuffer();
      if (res === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const workers = Array.from({ length: clients }, worker);
  return {
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** The page refreshes every 2 s: give what it shows time to arrive. */
const eventually = <T>(read: () => Promise<T> | T, options: { timeout?: number } = {}) =>
  expect.poll(read, { timeout: options.timeout ?? 15_000, interval: 200 });

const shot = async (target: Page, name: string) => {
  await target.screenshot({ path: join(shots, name), fullPage: name !== 'model-canary.png' });
};

describe.skipIf(!HAVE_CHROMIUM && !IN_CI)('console in a browser, against npm start', () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) {
      throw new Error(
        `no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium (apt-get install -y chromium); install it, or point MAAS_CHROMIUM at one`,
      );
    }
    home = await mkdtemp(join(tmpdir(), 'maas-console-'));
    shots = SHOTS ? join(ROOT, 'docs/console') : join(home, 'shots');
    await mkdir(shots, { recursive: true });
    await seedHome(home);
    await startStack();
    const client = createS3Client({
      endpoint: s3Url,
      region: LOCAL_S3_REGION,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    destroyClient = () => client.destroy();
    registry = new Registry(new S3ObjectStore({ bucket: BUCKET, client }));
    browser = await chromium.launchPersistentContext(join(home, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 800 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    // every action confirms first; the test says yes
    page.on('dialog', (dialog) => void dialog.accept());
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    destroyClient();
    if (stack?.exitCode === null) {
      const exited = new Promise((resolve) => stack?.once('exit', resolve));
      stack.kill('SIGTERM');
      await exited;
    }
    if (home !== undefined) await rm(home, { recursive: true, force: true });
  });

  it('shows the example models, interactive within a second', async () => {
    expect(consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // time from navigation to a usable models table, three loads (the first one cold)
    const loads: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(`${consoleUrl}/?load=${i}`);
      await page.waitForSelector('#models-state[data-ready="true"]');
      loads.push(
        await page.evaluate(
          () => performance.getEntriesByName('models-interactive')[0]?.startTime ?? -1,
        ),
      );
    }
    console.log(
      `console: models page interactive after ${loads.map((ms) => `${ms.toFixed(0)} ms`).join(', ')} (cold, warm, warm)`,
    );
    expect(loads.every((ms) => ms > 0)).toBe(true);
    await eventually(() => page.locator('tr[data-model="iris"] [data-status]').textContent()).toBe(
      'healthy',
    );
    expect(await page.locator('tr[data-model="encoder"] td').nth(2).textContent()).toBe('v1');
    // a narrow window: the page reflows, wide tables scroll inside their own box
    await page.setViewportSize({ width: 400, height: 800 });
    const overflow = await page.evaluate(
      () =>
        (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } })
          .document.documentElement.scrollWidth,
    );
    expect(overflow).toBeLessThanOrEqual(400);
    expect(await page.locator('tr[data-model="iris"] a').isVisible()).toBe(true);
    if (SHOTS) await shot(page, 'models-narrow.png');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('uploads a model through the page and sees its version appear', async () => {
    const dir = join(home, 'upload');
    await mkdir(dir, { recursive: true });
    const modelFile = join(dir, 'healthy.onnx');
    const samplesFile = join(dir, 'healthy.samples.json');
    await writeFile(modelFile, healthyModel());
    const random = mulberry32(1);
    await writeFile(samplesFile, JSON.stringify([JSON.parse(inferBody(sampleRow(random)))]));
    await page.setInputFiles('#upload-files', [modelFile, samplesFile]);
    await page.fill('#upload-model', MODEL);
    await page.selectOption('#upload-quantize', 'off');
    await page.click('#upload-submit');
    const outcome = page.locator('[data-outcome]');
    await outcome.waitFor({ timeout: 60_000 });
    expect(await outcome.getAttribute('data-outcome')).toBe('registered');
    expect(await outcome.textContent()).toContain(`registered ${MODEL} v1, serves fp32`);
    // ingest commits the manifest, then places the version in aliases.json: a refresh between
    // the two lists the model with no production yet
    const production = page.locator(`tr[data-model="${MODEL}"] td`).nth(2);
    await production.filter({ hasText: 'v1' }).waitFor({ timeout: 15_000 });
    expect(await production.textContent()).toBe('v1');
  });

  it('opens the model and sees non-empty charts once traffic flows', async () => {
    await page.click(`tr[data-model="${MODEL}"] a`);
    await page.waitForSelector('.model-page[data-ready="true"]');
    const load = traffic(4);
    try {
      await eventually(
        async () => Number(await page.locator('#charts-note').getAttribute('data-requests')),
        {
          timeout: 20_000,
        },
      ).toBeGreaterThan(20);
      expect(await page.locator('figure[data-chart] canvas').count()).toBe(3);
      expect(await page.locator('figure[data-chart="errors"]').textContent()).toContain(
        'alarm > 5 %',
      );
    } finally {
      await load.stop();
    }
    await page.click('#try-send');
    await eventually(() =>
      page.locator('#try-result [data-status]').getAttribute('data-status'),
    ).toBe('200');
    expect(await page.locator('#try-result').textContent()).toContain('answered by v1');
  });

  it('explains the example and shows its attributions as bars', async () => {
    await page.click('#try-explain');
    await eventually(() =>
      page.locator('#try-result [data-status]').getAttribute('data-status'),
    ).toBe('200');
    expect(await page.locator('#try-attributions [data-kind="bars"] tr').count()).toBeGreaterThan(
      0,
    );
    expect(await page.locator('#try-attributions').textContent()).toContain('kernel-shap');
    if (SHOTS) await page.screenshot({ path: join(shots, 'explain.png'), fullPage: true });
  });

  it('promotes and rolls back through the page, each in the history', async () => {
    const v2 = await uploadDirect('second.onnx', healthyModel(), { 'maas-promote': 'manual' });
    await page.waitForSelector(`button.promote[data-version="${v2}"]:not([disabled])`);
    await page.click(`button.promote[data-version="${v2}"]`);
    await eventually(() => page.locator('#action-result').textContent()).toBe(
      `v${v2} is production (was v1)`,
    );
    await eventually(() => page.locator('#alias-production').textContent()).toBe(`v${v2}`);
    await page.waitForSelector(`#history li[data-event="promoted"]:has-text("console")`);
    await page.click('#rollback');
    await eventually(() => page.locator('#action-result').textContent()).toBe(
      `production reverted from v${v2} to v1`,
    );
    await page.waitForSelector('#history li[data-event="rolled-back"]');
    expect(await page.locator('#history li').first().textContent()).toContain(`rolled-back v${v2}`);
    await eventually(() => page.locator('#alias-rolled-back').textContent()).toBe(`v${v2}`);
  });

  it('shows a failing canary breaching, then rolled back, without a reload', async () => {
    const bad = await uploadDirect('lookup.onnx', lookupModel(), { 'maas-canary-weight': '0.5' });
    await eventually(() => page.locator('#model-status [data-status]').textContent()).toBe(
      'canary baking',
    );
    // the models page during the canary, in a second tab (the model page stays as it is)
    const list = await browser?.newPage();
    if (list !== undefined) {
      await list.goto(consoleUrl);
      await list.waitForSelector(`tr[data-model="${MODEL}"] [data-status="canary baking"]`);
    }
    const marker = await page.evaluate(() => {
      const page = globalThis as unknown as { __sameDocument: boolean; location: { href: string } };
      page.__sameDocument = true;
      return page.location.href;
    });
    const load = traffic(8);
    try {
      await page.waitForSelector('#model-status [data-status="breaching"]', { timeout: 45_000 });
      expect(await page.locator('#model-status-detail').textContent()).toMatch(
        new RegExp(`^v${bad}: model-errors`),
      );
      await page.waitForTimeout(1500);
      await shot(page, 'model-canary.png');
      if (list !== undefined) await shot(list, 'models.png');
      await page.waitForSelector('#model-status [data-status="rolled back"]', { timeout: 45_000 });
      await page.waitForSelector(`#history li[data-event="rolled-back"]:has-text("v${bad}")`);
    } finally {
      await load.stop();
    }
    const first = page.locator('#history li').first();
    expect(await first.textContent()).toContain(`rolled-back v${bad}`);
    expect(await first.textContent()).toContain('model-errors');
    await eventually(() => page.locator('#alias-candidate').textContent()).toBe('none');
    // the same document all along: the page updated itself
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument,
      ),
    ).toBe(true);
    expect(page.url()).toBe(marker);
    await page.locator('#history').scrollIntoViewIfNeeded();
    await shot(page, 'rollback.png');
    await list?.close();
  });

  it('says clearly when the stack stops answering, without a blank page', async () => {
    const exited = new Promise((resolve) => stack?.once('exit', resolve));
    stack?.kill('SIGTERM');
    await exited;
    // the console went down with the stack: the page's own message says what to do
    await eventually(() => page.locator('[role="alert"]').first().textContent(), {
      timeout: 15_000,
    }).toContain('does not answer');
    expect(await page.locator('h1').textContent()).toBe(MODEL);
  });
});
