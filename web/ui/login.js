// DeMeS browser UI: the access token.
//
// The token comes from the address fragment (#token=..., which browsers
// never send to servers) or from the form on the "Open your DeMeS" screen,
// where a person pastes the address that demes ui printed, or the token
// alone. Either way it then lives in sessionStorage (this tab only) and
// never stays in the address bar; the page never logs it.

import { $, showError } from './dom.js';
import { state, stored } from './state.js';
import { checkToken } from './api.js';
import { plain } from './errors.js';

const KEY = 'demes-token';

// readToken takes the token from the address fragment, or from this tab's
// storage, and reports whether there is one.
export function readToken() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    state.token = decodeURIComponent(m[1]);
    stored('session', KEY, state.token);
    history.replaceState(null, '', location.pathname + location.search);
  } else {
    state.token = stored('session', KEY);
  }
  return !!state.token;
}

// forgetToken drops a token the node refused.
export function forgetToken() {
  stored('session', KEY, null);
}

// tokenFrom finds the token in what a person pasted: a whole address with
// #token=..., or the token itself (base64url, so no spaces or punctuation
// beyond - and _).
export function tokenFrom(text) {
  const s = text.trim();
  const m = s.match(/[#&?]token=([^&\s]+)/);
  const tok = m ? decodeURIComponent(m[1]) : s;
  return /^[A-Za-z0-9_-]{16,}$/.test(tok) ? tok : '';
}

// showLogin shows the screen that asks for the token, saying why.
export function showLogin(reason) {
  $('login-reason').textContent = reason;
  $('banner-token').hidden = false;
  document.body.classList.add('locked');
  $('login-token').focus();
}

function hideLogin() {
  $('banner-token').hidden = true;
  document.body.classList.remove('locked');
  showError($('login-error'), '');
  $('login-token').value = '';
}

// wireLogin makes the form check a pasted token with the node and, when it
// is the right one, keep it and call start.
export function wireLogin(start) {
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const tok = tokenFrom($('login-token').value);
    if (!tok) {
      showError($('login-error'), 'That is neither the address that demes ui printed nor a token. Copy the whole address, with the part after #token=, and paste it again.');
      return;
    }
    $('login-submit').disabled = true;
    showError($('login-error'), '');
    try {
      if (!(await checkToken(tok))) {
        showError($('login-error'), 'Your node does not accept this token. Run demes ui on the computer where your node runs: it prints the current one.');
        return;
      }
      state.token = tok;
      state.refused = false;
      stored('session', KEY, tok);
      hideLogin();
      start();
    } catch (err) {
      showError($('login-error'), plain(err, 'login'));
    } finally {
      $('login-submit').disabled = false;
    }
  });
}
