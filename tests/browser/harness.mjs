// What the browser scripts share: a bounded run, Debian's Chromium launched offline, and one page
// whose console errors and failed requests are collected until drained.

import { chromium } from 'playwright-core';

/// Ends the process if the whole run takes longer than `ms`, so a wedged browser cannot hang
/// `cargo test`; every wait inside is bounded too.
export function bound(script, ms) {
  setTimeout(() => {
    console.error(`${script}: gave up after ${ms} ms`);
    process.exit(3);
  }, ms).unref();
}

/// Chromium, headless. The machines' network is closed: without these flags Chromium keeps dialling
/// out (see the env notes).
export async function launch() {
  return chromium.launch({
    executablePath: process.env.PORTCULLIS_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/// A page in a fresh context (no cookies from anything else), with `stepMs` for every wait, and a
/// `drain()` that returns and clears what went wrong on it since the last drain. Chromium reports
/// CSP violations as console errors, each with the URL it concerns (so a test can tell the
/// browser's own favicon fetch from the page's); a failing style sheet, script or image is a
/// failed request (the document's own status is the test's to judge).
export async function openPage(browser, stepMs) {
  const context = await browser.newContext({ viewport: { width: 720, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(stepMs);
  page.setDefaultNavigationTimeout(stepMs);
  let consoleErrors = [];
  let failedRequests = [];
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push({ text: message.text(), url: message.location().url });
  });
  page.on('pageerror', (error) => consoleErrors.push({ text: `pageerror: ${error.message}`, url: page.url() }));
  page.on('requestfailed', (request) => failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400 && response.request().resourceType() !== 'document') {
      failedRequests.push(`${response.url()}: HTTP ${response.status()}`);
    }
  });
  const drain = () => {
    const drained = { consoleErrors, failedRequests };
    consoleErrors = [];
    failedRequests = [];
    return drained;
  };
  return { context, page, drain };
}
