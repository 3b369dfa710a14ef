// The playground in a real headless Chromium that can reach the wuye server and nothing
// else (deploy/playground-test.sh runs the browser in a network namespace whose only link
// leads to the server): the page renders, the docs pane shows the schema, the sign-in box
// signs in, a query runs, and no request leaves for another host.
import puppeteer from 'puppeteer-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.WUYE_PLAYGROUND_URL;
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const shot = process.env.SCREENSHOT;
if (!base) throw new Error('WUYE_PLAYGROUND_URL is not set');

const profile = mkdtempSync(join(tmpdir(), 'wuye-chromium-'));
const browser = await puppeteer.launch({
  executablePath: chromium,
  pipe: true,
  headless: true,
  userDataDir: profile,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
  ],
});

const foreign = [];
const failed = [];
let ok = false;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });
  page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('pageerror', (e) => console.error('page error:', e.message));

  const step = (s) => console.log(`playground: ${s}`);
  await page.goto(`${base}/graphql`, { waitUntil: 'load', timeout: 30_000 });
  await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
  const loading = await page.evaluate(() => document.body.innerText.includes('Loading…'));
  if (loading) throw new Error('the page still says Loading…');
  step('GraphiQL rendered');

  await page.type('input[name=login]', process.env.WUYE_LOGIN || 'admin');
  await page.type('input[name=password]', process.env.WUYE_PASSWORD || 'Wuye@2026');
  await page.click('[data-testid=sign-in] button[type=submit]');
  await page.waitForSelector('[data-testid=signed-in]', { timeout: 20_000 });
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('wuye.playground.session'))?.accessToken);
  if (!token) throw new Error('no access token stored after sign-in');
  step('signed in, token stored');

  await page.waitForSelector('button[aria-label="Show Documentation Explorer"]', { timeout: 20_000 });
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.waitForFunction(
    () => document.querySelector('.graphiql-doc-explorer')?.innerText.includes('Query'),
    { timeout: 30_000 },
  );
  await page.evaluate(() => {
    const link = [...document.querySelectorAll('.graphiql-doc-explorer a')].find((a) => a.innerText.trim() === 'Query');
    link?.click();
  });
  await page.waitForFunction(
    () => /houses/.test(document.querySelector('.graphiql-doc-explorer')?.innerText || ''),
    { timeout: 30_000 },
  );
  step('the docs pane shows the schema');

  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => (document.querySelector('.graphiql-response')?.innerText || '').includes('"data"'),
    { timeout: 30_000 },
  );
  const response = await page.evaluate(() => document.querySelector('.graphiql-response')?.innerText || '');
  if (!response.includes('JCHY')) throw new Error(`the query did not return the demo projects: ${response.slice(0, 400)}`);
  if (response.includes('"errors"')) throw new Error(`the query answered errors: ${response.slice(0, 400)}`);
  step('a query ran with the stored token');

  if (shot) await page.screenshot({ path: shot });
  if (foreign.length) throw new Error(`requests left for other hosts: ${foreign.join(', ')}`);
  ok = true;
  step('no request left the server');
} catch (e) {
  console.error('playground test failed:', e.message);
  if (failed.length) console.error('failed requests:', failed.join('\n'));
  if (foreign.length) console.error('foreign requests:', foreign.join('\n'));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
