// Passkeys on the gateway's pages in headless Chromium with a virtual authenticator (CDP), driven
// by playwright-core for tests/it/browser_passkeys.rs.
//
// Usage: node passkeys.mjs '{"base": "http://localhost:…", "setupUrl": "…", "acceptUrl": "…",
//   "displayName": "…", "passwordEmail": "…", "password": "…"}'
// In one tab (virtual authenticators belong to a tab, and so do the passkeys they hold):
//   setup        opens the setup link, clicks "Create your passkey";
//   signIn       a fresh load of /login, "Sign in with a passkey" (usernameless);
//   autofill     /login where the browser offers passkeys in the email field;
//   bogus        the button with the authenticator signing wrongly;
//   password     /login with a wrong, then the right password;
//   invitation   the accept link, a name, "Create a passkey instead of a password".
// It prints one JSON object (what the page showed after each step) and leaves every judgement to
// the Rust test. It exits non-zero only when it could not drive the browser at all.

import { bound, launch, openPage } from './harness.mjs';

bound('passkeys.mjs', 120_000);
const STEP_MS = 20_000;

const input = JSON.parse(process.argv[2] ?? '{}');

const browser = await launch();

try {
  const { context, page, drain } = await openPage(browser, STEP_MS);

  // A browser without autofill for passkeys, on pages opened with #no-autofill: Chromium's virtual
  // authenticator answers an autofill (conditional) request at once, without a pick, so the
  // button's own request could not be told apart from it. The gateway never sees the fragment.
  await context.addInitScript(() => {
    if (location.hash === '#no-autofill' && window.PublicKeyCredential) {
      PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    }
  });
  // Through about:blank: a page differing only in its fragment would not be loaded afresh.
  const open = async (url) => {
    await page.goto('about:blank');
    return page.goto(url, { waitUntil: 'load' });
  };

  // A platform authenticator that holds discoverable credentials and verifies its user, and
  // answers without a touch.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const credentials = async () =>
    (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.map((credential) => ({
      rpId: credential.rpId,
      isResidentCredential: credential.isResidentCredential,
      signCount: credential.signCount,
    }));

  // What a person sees: the visible heading and text, the alert if one shows, and the requests the
  // page sent to /graphql (operation names only: the page's doing, not the answers).
  let operations = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname === '/graphql') {
      const query = JSON.parse(request.postData() ?? '{}').query ?? '';
      operations.push(query.match(/\{\s*(\w+)/)?.[1] ?? '?');
    }
  });
  const read = async (response) => {
    const alert = page.locator('[role="alert"]:visible');
    const seen = {
      status: response?.status() ?? null,
      url: page.url(),
      title: await page.title(),
      heading: (await page.locator('h1:visible').first().textContent())?.trim() ?? null,
      bodyText: await page.locator('body').innerText(),
      alert: (await alert.count()) ? (await alert.first().textContent()).trim() : null,
      storage: await page.evaluate(() => ({
        local: localStorage.length,
        session: sessionStorage.length,
        cookie: document.cookie,
      })),
      operations,
      ...drain(),
    };
    operations = [];
    return seen;
  };
  // Waits for the page to settle after a click: signed in / accepted, or an alert.
  const outcome = (done) =>
    page.locator(`${done}, [role="alert"]:visible`).first().waitFor({ state: 'visible' }).catch(() => {});

  const result = {};

  // A step that cannot go on (a button that never shows) ends the run with what was seen so far.
  try {
    // a. The setup link: the account's first passkey, and a session.
    let response = await open(input.setupUrl);
    result.setupOpened = await read(response);
    await page.getByRole('button', { name: 'Create your passkey' }).click();
    await outcome('#signed-in-as:visible');
    result.setup = await read(response);
    result.credentialsAfterSetup = await credentials();

    // b. A fresh page: usernameless sign-in with the button.
    response = await open(`${input.base}/login#no-autofill`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await outcome('#signed-in-as:visible');
    result.signIn = await read(response);

    // Autofill: where the browser offers passkeys in the email field, picking one signs in (the
    // virtual authenticator picks by itself; no click).
    response = await open(`${input.base}/login`);
    result.conditionalMediation = await page.evaluate(() => PublicKeyCredential.isConditionalMediationAvailable());
    await outcome('#signed-in-as:visible');
    result.autofill = await read(response);

    // c. The authenticator signs wrongly: the gateway refuses, the page says so.
    await cdp.send('WebAuthn.setResponseOverrideBits', { authenticatorId, isBogusSignature: true });
    response = await open(`${input.base}/login#no-autofill`);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await outcome('#signed-in-as:visible');
    result.bogus = await read(response);
    await cdp.send('WebAuthn.setResponseOverrideBits', { authenticatorId, isBogusSignature: false });

    // The email and password form, wrong and then right.
    response = await open(`${input.base}/login#no-autofill`);
    await page.getByLabel('Email').fill(input.passwordEmail);
    await page.getByLabel('Password', { exact: true }).fill(`${input.password}-wrong`);
    await page.getByRole('button', { name: 'Sign in with a password' }).click();
    await outcome('#signed-in-as:visible');
    result.wrongPassword = await read(response);
    await page.getByLabel('Password', { exact: true }).fill(input.password);
    await page.getByRole('button', { name: 'Sign in with a password' }).click();
    await outcome('#signed-in-as:visible');
    result.password = await read(response);

    // d. The invitation: a new account with a passkey only.
    response = await open(input.acceptUrl);
    result.invitationOpened = await read(response);
    await page.getByLabel('Your name').fill(input.displayName);
    await page.getByRole('button', { name: 'Create a passkey instead of a password' }).click();
    await outcome('#invitation-accepted:visible');
    result.invitation = await read(response);
    result.credentialsAfterInvitation = await credentials();
  } catch (error) {
    result.error = `${error.message}\n${page.url()}\n${await page.locator('body').innerText().catch(() => '')}`;
  }

  await context.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
