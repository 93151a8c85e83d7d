// DeMeS browser UI: talking to the local node's API.
//
// The page never sends the access token. It opens a session first
// (openSession): it asks the node to prove that it knows the token, and
// only then proves the same, with HMACs over fresh nonces. Whatever
// listens on the node's port while the node is down (any user of the
// machine may) so learns nothing it can use: a session lives as long as
// the node's process. Every request carries the session in the
// Authorization header; only the event stream and images, which cannot
// set headers, put it in the query (GET only, and the server never logs
// queries). A request refused for its session (the node restarted) opens
// a new one and is sent again, once.

import { state } from './state.js';

export const API = '/api/v1';

export const enc = encodeURIComponent;

// APIError is a failed request: the node's error and hint, and the HTTP
// status (0 when the node did not answer at all).
export class APIError extends Error {
  constructor(message, status, hint) {
    super(message);
    this.status = status;
    this.hint = hint || '';
  }
}

// hooks are what app.js does when a request shows that the node went away,
// came back, refused the token or is stopped.
export const hooks = {
  reachable: (ok) => {},
  refused: () => {},
  stopped: () => {},
};

// authorization is the header that carries this page's session.
export function authorization() {
  return 'Bearer ' + state.session;
}

// request sends a request to the node and returns the response, or throws
// an APIError with status 0 when the node does not answer.
async function request(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    if (state.refused) throw new APIError('the node refused the access token', 401, '');
    await ensureSession();
    const opts = { method, headers: { Authorization: authorization() }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const session = state.session;
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (err) {
      hooks.reachable(false);
      throw new APIError('cannot reach your node', 0, '');
    }
    hooks.reachable(true);
    if (res.status !== 401 || attempt > 0) return res;
    // A session of the node's earlier process: open another and try again.
    if (state.session === session) state.session = null;
  }
}

// ---- sessions -------------------------------------------------------------------

const NODE_LABEL = 'demes-ui-session-v1 node\n';
const PAGE_LABEL = 'demes-ui-session-v1 page\n';

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function mac(token, text) {
  const enc8 = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc8.encode(token), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return b64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, enc8.encode(text))));
}

// SESSION_WAIT_MS bounds each step of opening a session. Every request
// waits for the one session being opened, so an answer that never comes
// (what listened on the port while the node was down holds the
// connection) would otherwise keep the page from its node for good.
const SESSION_WAIT_MS = 10000;

// post sends body to a session route, which needs no token.
async function post(path, body) {
  try {
    return await fetch(API + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
      signal: AbortSignal.timeout(SESSION_WAIT_MS),
    });
  } catch (err) {
    throw new APIError('cannot reach your node', 0, '');
  }
}

// openSession opens a session with token: the session id, or null when
// what answers does not know the token (the node has another token now,
// or it is not the node). A refused answer after the node's right proof
// is a lost challenge, not a wrong token: it asks again. It sends nothing
// derived from the token before the other side proved that it knows the
// token.
export async function openSession(token) {
  if (!window.crypto || !crypto.subtle) {
    throw new APIError('this browser does not let the page check its node at this address', 0,
      'open the address that demes ui prints, which starts with http://127.0.0.1');
  }
  for (let attempt = 1; ; attempt++) {
    const nonce = new Uint8Array(32);
    crypto.getRandomValues(nonce);
    const page = b64url(nonce);
    let res = await post('/session/challenge', { page_nonce: page });
    if (!res.ok) throw await failure(res);
    let c;
    try { c = await res.json(); } catch (e) { return null; }
    if (!c || typeof c.node_nonce !== 'string' || typeof c.node_proof !== 'string') return null;
    // Both proofs name the address this page is at: a node that answers
    // at another one, through whatever listens here, does not fit.
    const host = location.host.toLowerCase() + '\n';
    if (c.node_proof !== await mac(token, NODE_LABEL + host + page + '\n' + c.node_nonce)) return null;
    const proof = await mac(token, PAGE_LABEL + host + page + '\n' + c.node_nonce);
    res = await post('/session', { page_nonce: page, node_nonce: c.node_nonce, page_proof: proof });
    if (res.status === 401) {
      // The node has just proved that it knows the token, so it refused
      // the challenge, not the token: it expired, or the node dropped it
      // for the many others asked meanwhile (anyone local may ask). Ask
      // again; the token is not in question.
      if (attempt < 3) continue;
      throw new APIError('your node did not take the page’s answer to its challenge', 0, '');
    }
    if (!res.ok) throw await failure(res);
    const s = await res.json();
    return s && typeof s.session === 'string' ? s.session : null;
  }
}

let opening = null;

// ensureSession opens a session with the page's token when the page has
// none, once for all the requests that wait for it. What answers without
// knowing the token makes the page stop and ask for the address again
// (hooks.refused).
export function ensureSession() {
  if (state.session) return Promise.resolve();
  if (!opening) {
    opening = (async () => {
      try {
        let s;
        try {
          s = await openSession(state.token);
        } catch (err) {
          if (err.status === 0) hooks.reachable(false);
          throw err;
        }
        hooks.reachable(true);
        if (!s) {
          hooks.refused();
          throw new APIError('what answers at this address does not know the page’s access token', 401, '');
        }
        state.session = s;
      } finally {
        opening = null;
      }
    })();
  }
  return opening;
}

// BIDI matches the characters that reorder the text around them
// (overrides, embeddings, isolates, marks). Display names are chosen by
// the members: with them, "\u202eecila" is drawn "alice", and the
// reordering can spill over what follows on the line (the fingerprint
// beside it). Names are shown without them, and so are reactions, which
// are drawn beside their count: "\u{1f389}\u202e01" with one reaction read
// "1 10".
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

// parseJSON parses what the node sent, with the bidirectional controls
// taken out of every name in it (any field whose key ends with "name") and
// every reaction ("emoji").
export function parseJSON(text) {
  return JSON.parse(text, (k, v) => (typeof v === 'string' && (/name$/.test(k) || k === 'emoji') ? v.replace(BIDI, '') : v));
}

// failure turns a response that is not ok into an APIError, after telling
// app.js about a refused token or a stopped node.
async function failure(res) {
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  const msg = (data && data.error) || res.status + ' ' + res.statusText;
  if (res.status === 401) hooks.refused();
  if (res.status === 503) hooks.stopped();
  return new APIError(msg, res.status, data && data.hint);
}

// api sends a JSON request and returns the JSON answer.
export async function api(method, path, body) {
  const res = await request(method, path, body);
  if (!res.ok) throw await failure(res);
  try { return parseJSON(await res.text()); } catch (e) { return null; }
}

// download fetches a file from the API: the body as a Blob and the name
// the node suggests. A link could not carry the token in a header.
export async function download(path) {
  const res = await request('GET', path);
  if (!res.ok) throw await failure(res);
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  return { blob: await res.blob(), name: m ? m[1] : '' };
}

// checkToken opens a session with token, which proves it is the right
// one: true (and the page now uses that session), false (what answers does
// not know it), or an APIError when the node cannot tell.
export async function checkToken(token) {
  const s = await openSession(token);
  if (!s) return false;
  state.session = s;
  return true;
}

export function qrURL(text) {
  return API + '/qr?text=' + enc(text) + '&session=' + enc(state.session);
}

export function eventsURL() {
  return API + '/events?session=' + enc(state.session);
}
