// The script of the gateway's pages, served at /assets/login.js under `script-src 'self'`:
// - /login: passkey sign-in (a button, and the browser's autofill where it offers passkeys),
//   email and password, and a setup link's first passkey (/login?setup=…);
// - /invitations/accept (new account): a passkey instead of a password.
// It talks to /graphql with fetch. Tokens stay in memory (never in web storage or cookies): a script
// injected later could read storage, and this page has no use for tokens after showing who signed in.
// Every text it shows comes from the page (data- attributes), already in the reader's language.
'use strict';

(() => {
  const AUTH_FIELDS = 'accessToken refreshToken user { email } session { authMethod }';
  const START_SIGN_IN = 'mutation { startPasskeyAuthentication { ceremonyId options } }';
  const FINISH_SIGN_IN = `mutation($id: ID!, $credential: JSON!) {
    finishPasskeyAuthentication(input: {ceremonyId: $id, credential: $credential}) { ${AUTH_FIELDS} } }`;
  const LOGIN = `mutation($email: String!, $password: String!) {
    login(input: {email: $email, password: $password}) { ${AUTH_FIELDS} } }`;
  const START_SETUP = `mutation($token: String!, $name: String!) {
    startPasskeySetup(input: {token: $token, name: $name}) { ceremonyId options } }`;
  const FINISH_REGISTRATION = `mutation($id: ID!, $credential: JSON!) {
    finishPasskeyRegistration(input: {ceremonyId: $id, credential: $credential}) {
      passkey { id } session { ${AUTH_FIELDS} } } }`;
  const START_INVITATION = `mutation($token: String!, $displayName: String!) {
    startInvitationPasskey(input: {token: $token, displayName: $displayName}) { ceremonyId options } }`;
  const ACCEPT_INVITATION = `mutation($token: String!, $displayName: String!, $id: ID!, $credential: JSON!) {
    acceptInvitation(input: {token: $token, displayName: $displayName,
      passkey: {ceremonyId: $id, credential: $credential}}) { invitation { status } } }`;

  /** A GraphQL error, with its `extensions.code`. */
  class GraphqlError extends Error {
    constructor(error) {
      super(error.message);
      this.code = error.extensions?.code;
    }
  }

  async function graphql(query, variables = {}) {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
      credentials: 'omit',
    });
    const body = await response.json();
    if (body.errors?.length) throw new GraphqlError(body.errors[0]);
    return body.data;
  }

  // The browser's own JSON ↔ WebAuthn conversions (Chromium 129+, Firefox 119+, Safari 18.4+).
  const supported = () =>
    typeof window.PublicKeyCredential?.parseRequestOptionsFromJSON === 'function' &&
    typeof window.PublicKeyCredential?.parseCreationOptionsFromJSON === 'function';

  // The gateway's options are the standard JSON forms (no null members), parsed as they come.
  const requestOptions = (json) => PublicKeyCredential.parseRequestOptionsFromJSON(json);
  const creationOptions = (json) => PublicKeyCredential.parseCreationOptionsFromJSON(json);

  // The person closed the browser's dialog, or it timed out: not a failure of the gateway.
  const cancelled = (error) => error instanceof DOMException && error.name === 'NotAllowedError';

  /** Shows `text` in the role="alert" element `alert`, or hides it for null. */
  const say = (alert, text) => {
    alert.textContent = text ?? '';
    alert.hidden = text == null;
  };

  /** Disables `buttons` while `work` runs, so a second click cannot start a second ceremony. */
  async function busy(buttons, work) {
    for (const button of buttons) button.disabled = true;
    try {
      return await work();
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }

  function loginPage(root) {
    const texts = root.dataset;
    const alert = document.getElementById('login-error');
    const passkeyButton = document.getElementById('passkey-sign-in');
    const setupButton = document.getElementById('create-passkey');
    const form = document.getElementById('password-form');
    const buttons = [passkeyButton, setupButton, form.querySelector('button')].filter(Boolean);
    // The tokens of this page's sign-in, in memory only (see the top of the file).
    let session = null;
    // The pending autofill (conditional) request, if any: { controller, settled }.
    let conditional = null;
    // Offers left after a refused passkey: bounded, in case a browser answers without asking.
    let restarts = 3;

    root.hidden = false;
    if (!supported()) {
      passkeyButton.hidden = true;
      passkeyButton.nextElementSibling.hidden = true;
    }

    const signedIn = (payload) => {
      session = payload;
      say(alert, null);
      document.getElementById('login-forms').hidden = true;
      document.getElementById('signed-in-as').textContent = texts.signedIn.replace('{email}', session.user.email);
      document.getElementById('login-done').hidden = false;
    };

    const finishSignIn = async (ceremonyId, credential) => {
      try {
        const data = await graphql(FINISH_SIGN_IN, { id: ceremonyId, credential: credential.toJSON() });
        signedIn(data.finishPasskeyAuthentication);
      } catch (error) {
        say(alert, texts.passkeyFailed);
        throw error;
      }
    };

    // Autofill: the email field offers this site's passkeys; picking one signs in. Restarted after
    // a failed attempt so the offer stays; stopped before any other WebAuthn request.
    async function startConditional() {
      if (session || !supported() || texts.setupToken) return;
      if (!(await PublicKeyCredential.isConditionalMediationAvailable?.())) return;
      const controller = new AbortController();
      // Only a refused credential restarts the offer: a failing start would otherwise loop.
      let answered = false;
      const settled = (async () => {
        const { startPasskeyAuthentication: ceremony } = await graphql(START_SIGN_IN);
        const credential = await navigator.credentials.get({
          mediation: 'conditional',
          publicKey: requestOptions(ceremony.options),
          signal: controller.signal,
        });
        answered = true;
        await finishSignIn(ceremony.ceremonyId, credential);
      })().then(
        () => {},
        () => {
          if (answered && !controller.signal.aborted && conditional?.controller === controller && restarts > 0) {
            restarts -= 1;
            conditional = null;
            startConditional();
          }
        },
      );
      conditional = { controller, settled };
    }

    async function stopConditional() {
      const pending = conditional;
      conditional = null;
      if (!pending) return;
      pending.controller.abort();
      // A new WebAuthn request is refused while the old one is still winding down.
      await pending.settled;
    }

    passkeyButton.addEventListener('click', () =>
      busy(buttons, async () => {
        say(alert, null);
        await stopConditional();
        try {
          const { startPasskeyAuthentication: ceremony } = await graphql(START_SIGN_IN);
          let credential;
          try {
            credential = await navigator.credentials.get({ publicKey: requestOptions(ceremony.options) });
          } catch (error) {
            say(alert, cancelled(error) ? texts.cancelled : texts.passkeyFailed);
            return;
          }
          await finishSignIn(ceremony.ceremonyId, credential);
        } catch {
          say(alert, texts.passkeyFailed);
        } finally {
          startConditional();
        }
      }),
    );

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      busy(buttons, async () => {
        say(alert, null);
        try {
          const data = await graphql(LOGIN, { email: form.email.value, password: form.password.value });
          form.password.value = '';
          await stopConditional();
          signedIn(data.login);
        } catch (error) {
          const wrong = error instanceof GraphqlError && error.code === 'UNAUTHENTICATED';
          say(alert, wrong ? texts.passwordFailed : error.message);
        }
      });
    });

    if (setupButton) {
      if (!supported()) say(alert, texts.unsupported);
      setupButton.addEventListener('click', () =>
        busy(buttons, async () => {
          say(alert, null);
          try {
            const started = await graphql(START_SETUP, { token: texts.setupToken, name: texts.passkeyName });
            const ceremony = started.startPasskeySetup;
            const credential = await navigator.credentials.create({ publicKey: creationOptions(ceremony.options) });
            const data = await graphql(FINISH_REGISTRATION, {
              id: ceremony.ceremonyId,
              credential: credential.toJSON(),
            });
            // The link is spent: a reload should not offer it again.
            history.replaceState(null, '', location.pathname);
            signedIn(data.finishPasskeyRegistration.session);
          } catch (error) {
            say(alert, cancelled(error) ? texts.cancelled : texts.setupFailed);
          }
        }),
      );
    }

    startConditional();
  }

  function invitationPage(root) {
    // Without the browser's support the section stays hidden; the password form is unaffected.
    if (!supported()) return;
    const texts = root.dataset;
    const alert = document.getElementById('passkey-error');
    const button = document.getElementById('accept-with-passkey');
    const name = document.getElementById('display_name');
    root.hidden = false;
    button.addEventListener('click', () =>
      busy([button], async () => {
        say(alert, null);
        const displayName = name.value.trim();
        if (!displayName) {
          say(alert, texts.nameNeeded);
          name.focus();
          return;
        }
        try {
          const started = await graphql(START_INVITATION, { token: texts.token, displayName });
          const ceremony = started.startInvitationPasskey;
          const credential = await navigator.credentials.create({ publicKey: creationOptions(ceremony.options) });
          await graphql(ACCEPT_INVITATION, {
            token: texts.token,
            displayName,
            id: ceremony.ceremonyId,
            credential: credential.toJSON(),
          });
          const accepted = document.getElementById('invitation-accepted');
          document.getElementById('invitation').hidden = true;
          accepted.hidden = false;
          document.title = accepted.querySelector('h1').textContent;
        } catch {
          say(alert, texts.failed);
        }
      }),
    );
  }

  const start = () => {
    const login = document.getElementById('login');
    if (login) loginPage(login);
    const invitation = document.getElementById('invitation-passkey');
    if (invitation) invitationPage(invitation);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
