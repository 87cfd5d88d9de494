import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningConsole, startConsole } from '../../cli/console/index.ts';
import { LocalMetricsStore } from '../../local/guard/metrics-store.ts';
import {
  LOCAL_S3_CREDENTIALS,
  LOCAL_S3_REGION,
  type LocalS3,
  startLocalS3,
} from '../../local/s3/index.ts';
import { alarmDefinitions } from '../../src/guard/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { createS3Client, S3ObjectStore } from '../../src/storage/s3.ts';
import { modelWith } from '../support/guard-fixtures.ts';

/**
 * A model page open while the model store goes away and comes back: the outage shows as such
 * (not the last status as if current), and the page recovers by itself once the store answers.
 * Only the local S3 stops here, so this takes seconds rather than a whole `npm start`.
 */

const CHROMIUM = process.env.MAAS_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

let directory: string;
let s3: LocalS3;
let port: number;
let destroyClient = (): void => undefined;
let console_: RunningConsole;
let browser: Browser;
let page: Page;

describe.skipIf(!HAVE_CHROMIUM && !IN_CI)('console page across a model store outage', () => {
  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    directory = await mkdtemp(join(tmpdir(), 'maas-console-recovery-'));
    s3 = await startLocalS3({ port: 0, directory });
    port = Number(new URL(s3.endpoint).port);
    const client = createS3Client({
      endpoint: s3.endpoint,
      region: LOCAL_S3_REGION,
      credentials: LOCAL_S3_CREDENTIALS,
    });
    destroyClient = () => client.destroy();
    await modelWith(new Registry(new S3ObjectStore({ bucket: s3.bucket, client })), 'steady', 1, {
      production: 1,
    });
    console_ = await startConsole({
      target: {
        kind: 'local',
        s3Endpoint: s3.endpoint,
        bucket: s3.bucket,
        region: LOCAL_S3_REGION,
        apiUrl: 'http://127.0.0.1:9',
      },
      port: 0,
      definitions: alarmDefinitions({ timeScale: 1 / 60, overrides: {} }),
      localStore: new LocalMetricsStore(60_000),
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await console_?.close();
    destroyClient();
    await s3?.close();
    if (directory !== undefined) await rm(directory, { recursive: true, force: true });
  });

  it('marks the status unknown during the outage and clears the error when the store is back', async () => {
    await page.goto(`${console_.url}/#/models/steady`);
    await page.waitForSelector('#model-status [data-status="healthy"]');

    await s3.close();
    await page.waitForSelector('[role="alert"]', { timeout: 20_000 });
    await page.waitForSelector('#model-status [data-status="unknown"]');

    s3 = await startLocalS3({ port, directory });
    await page.waitForSelector('#model-status [data-status="healthy"]', { timeout: 20_000 });
    await page.locator('[role="alert"]').first().waitFor({ state: 'detached', timeout: 20_000 });
    expect(await page.locator('tr[data-version="1"]').count()).toBe(1);
  }, 90_000);

  it('fetches the try-it example again when the first fetch was lost (CI run of stop 19)', async () => {
    // the page loaded while the store was away: the model answered first, the example did not, and
    // the card kept the outage's error for good
    const fresh = await browser.newPage();
    let refused = 0;
    await fresh.route('**/api/models/steady/example*', async (route) => {
      refused += 1;
      await route.abort('connectionrefused');
    });
    await fresh.goto(`${console_.url}/#/models/steady`);
    await fresh.waitForSelector('#try-source [role="alert"]');
    await fresh.unroute('**/api/models/steady/example*');
    await fresh
      .locator('#try-source [role="alert"]')
      .waitFor({ state: 'detached', timeout: 20_000 });
    expect(refused).toBeGreaterThan(0);
    expect(await fresh.locator('#try-source').textContent()).toMatch(
      /^Example made from the signature of v1/,
    );
    expect(JSON.parse(await fresh.locator('#try-body').inputValue())).toHaveProperty('inputs');
    await fresh.close();
  }, 60_000);
});
