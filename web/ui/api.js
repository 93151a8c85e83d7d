// DeMeS browser UI: talking to the local node's API.
//
// Every request carries the token in the Authorization header; only the
// event stream and images, which cannot set headers, put it in the query
// (GET only, and the server never logs queries).

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

function headers() {
  return { Authorization: 'Bearer ' + state.token };
}

// request sends a request to the node and returns the response, or throws
// an APIError with status 0 when the node does not answer.
async function request(method, path, body) {
  if (state.refused) throw new APIError('the node refused the access token', 401, '');
  const opts = { method, headers: headers(), cache: 'no-store' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, opts);
  } catch (err) {
    hooks.reachable(false);
    throw new APIError('cannot reach your node', 0, '');
  }
  hooks.reachable(true);
  return res;
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

// checkToken asks the node whether token is the right one, without using
// it for anything else: true, false (refused), or an APIError when the node
// cannot tell.
export async function checkToken(token) {
  let res;
  try {
    res = await fetch(API + '/status', { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
  } catch (err) {
    throw new APIError('cannot reach your node', 0, '');
  }
  if (res.status === 401) return false;
  if (!res.ok) throw await failure(res);
  return true;
}

export function qrURL(text) {
  return API + '/qr?text=' + enc(text) + '&token=' + enc(state.token);
}

export function eventsURL() {
  return API + '/events?token=' + enc(state.token);
}
