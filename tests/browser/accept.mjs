// The invitation accept page in headless Chromium, driven by playwright-core for tests/it/browser.rs.
//
// Usage: node accept.mjs '<JSON>' where the JSON is either
//   {"mode": "accept", "url": "…", "displayName": "…", "password": "…", "screenshotDir": "…"}
//     opens the link, reads the page, fills the new-account form, submits, reads the done page;
//   {"mode": "visit", "urls": ["…", …]}
//     opens each link and reads the page.
// It prints one JSON object on stdout and leaves every judgement to the Rust test, so that a
// failure there shows what the browser saw. It exits non-zero only when it could not drive the
// browser at all (the message is on stderr).

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { bound, launch, openPage } from './harness.mjs';

bound('accept.mjs', 120_000);
const STEP_MS = 30_000;

const input = JSON.parse(process.argv[2] ?? '{}');

const browser = await launch();

try {
  // Errors belong to the page they were raised on: `drain()` after each.
  const { context, page, drain } = await openPage(browser, STEP_MS);

  const read = async (response) => ({
    status: response?.status() ?? null,
    url: page.url(),
    title: await page.title(),
    heading: (await page.locator('h1').first().textContent())?.trim() ?? null,
    bodyText: await page.locator('body').innerText(),
    // The accent as the browser applied it: the brand color only if the nonce'd <style> was allowed.
    buttonBackground: await page.evaluate(() => {
      const button = document.querySelector('button');
      return button ? getComputedStyle(button).backgroundColor : null;
    }),
    cardBorder: await page.evaluate(() => {
      const card = document.querySelector('.card');
      return card ? getComputedStyle(card).borderTopColor : null;
    }),
    ...drain(),
  });

  let result;
  if (input.mode === 'accept') {
    const shot = (name) => join(input.screenshotDir, `portcullis-accept-${randomUUID()}-${name}.png`);
    const opened = await read(await page.goto(input.url, { waitUntil: 'load' }));
    await page.getByLabel('Your name').fill(input.displayName);
    await page.getByLabel('Choose a password').fill(input.password);
    await page.getByLabel('Repeat the password').fill(input.password);
    const formScreenshot = shot('form');
    await page.screenshot({ path: formScreenshot, fullPage: true });
    const [posted] = await Promise.all([
      page.waitForResponse(
        (response) => response.request().method() === 'POST' && new URL(response.url()).pathname === '/invitations/accept',
      ),
      page.getByRole('button', { name: 'Create account and join' }).click(),
    ]);
    await page.waitForLoadState('load');
    const submitted = await read(posted);
    const doneScreenshot = shot('done');
    await page.screenshot({ path: doneScreenshot, fullPage: true });

    // Anything reported after the done page was read (kept apart from the canary's own error).
    const late = drain();

    // Proof that the listener above would see a violation: an inline <style> without the nonce
    // must be refused and reported. If this stays silent, "no console errors" proves nothing.
    const refused = page.waitForEvent('console', {
      predicate: (message) => message.type() === 'error' && message.text().includes('Content Security Policy'),
      timeout: STEP_MS,
    });
    await page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body { background: red; }';
      document.head.append(style);
    });
    const cspCanary = await refused.then((message) => message.text(), () => null);

    result = { opened, submitted, late, cspCanary, screenshots: [formScreenshot, doneScreenshot] };
  } else if (input.mode === 'visit') {
    const pages = [];
    for (const url of input.urls) {
      pages.push(await read(await page.goto(url, { waitUntil: 'load' })));
    }
    result = { pages };
  } else {
    throw new Error(`unknown mode ${JSON.stringify(input.mode)}`);
  }
  await context.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
