// DeMeS browser UI: keeping the page in step with the node. The event
// stream, the reloads it triggers, and what the page says when the node
// stops, goes away or comes back.
//
// Losing the node shows within about a second and a half: the event stream
// breaks at once when the node's process ends, and after a short grace (a
// reconnect usually takes a moment, and should not flash a banner) the page
// says so, disables sending and stops claiming anyone is online.

import { $, later } from './dom.js';
import { state, groupMessages, myID, groupStatus, shortID } from './state.js';
import { api, ensureSession, eventsURL, hooks, parseJSON } from './api.js';
import { upsertMessage, loadMessages, PAGE, PREVIEW } from './messages.js';
import { renderGroups, messagesChanged, selectGroup, pickGroup, displayName, authorLabel } from './groups.js';
import { renderMessages, renderCompose, renderChatHeader, renderQuorumBanner, renderOlder } from './chat.js';
import { renderMembers } from './memberlist.js';
import { renderNetwork } from './network.js';
import { membership } from './members.js';
import { newMessage } from './notify.js';
import { showLogin, forgetToken } from './login.js';
import { renderReceiptsToggle } from './receipts.js';

const STATUS_POLL_MS = 5000;
// How long the event stream may be down before the page says so.
const CONN_GRACE_MS = 1000;

// ---- loading ----------------------------------------------------------------

export async function refreshAll() {
  await Promise.allSettled([refreshDemo(), refreshStatus(), refreshGroups()]);
  // Every group's newest messages: the open one's for reading, the others'
  // for their previews and unread counts.
  await Promise.allSettled(state.groups.map((g) => loadMessages(g.group_id, g.group_id === state.selected ? PAGE : PREVIEW)));
}

// memberSigs is the member list each group had at the last status, to
// notice joins and leaves.
const memberSigs = new Map();

export async function refreshStatus() {
  try {
    state.status = await api('GET', '/status');
    for (const g of state.status.groups || []) {
      for (const m of g.members || []) state.known.set(m.public_id, m);
    }
    markStopped(state.status.running === false);
  } catch (err) {
    // Shown by the pill and banners; nothing else to do.
  }
  renderStatusViews();
  // A member joined or left the open group: its line comes with the
  // newest page.
  const g = groupStatus(state.selected);
  if (g) {
    const sig = (g.members || []).map((m) => m.public_id).sort().join(',');
    const old = memberSigs.get(g.group_id);
    memberSigs.set(g.group_id, sig);
    if (old !== undefined && old !== sig) loadMessages(g.group_id, PAGE);
  }
  // Invites come and go with the log, as the status does.
  later('invites', () => membership.loadInvites(), 100);
}

export async function refreshGroups() {
  let groups;
  try {
    groups = await api('GET', '/groups');
  } catch (err) {
    return;
  }
  const fresh = groups.filter((g) => !state.groups.some((o) => o.group_id === g.group_id));
  state.groups = groups;
  const sel = pickGroup();
  renderGroups();
  if (sel !== state.selected) selectGroup(sel);
  else renderChatHeader();
  // A group new to the page (joined or created elsewhere) needs its
  // preview and unread count.
  for (const g of fresh) if (g.group_id !== state.selected) loadMessages(g.group_id, PREVIEW);
}

async function refreshDemo() {
  try {
    state.demo = await api('GET', '/demo');
  } catch (err) {
    return;
  }
  if (state.demo.enabled) markStopped(!state.demo.running);
  renderDemo();
}

export function markStopped(stopped) {
  if (state.stopped === stopped) return;
  state.stopped = stopped;
  renderStatusViews();
  renderDemo();
}

// ---- events -------------------------------------------------------------------

export async function connectEvents() {
  if (state.es) state.es.close();
  if (state.refused) return;
  const me = {};
  state.esTry = me;
  try {
    await ensureSession();
  } catch (err) {
    // The node is not answering, or does not know the token (then the
    // login screen shows and state.refused stops the retries).
    const delay = Math.min(15000, 1000 * 2 ** state.esFailures++);
    setTimeout(() => { if (state.esTry === me) connectEvents(); }, delay);
    return;
  }
  if (state.esTry !== me || state.refused) return;
  const es = new EventSource(eventsURL());
  state.es = es;
  es.onopen = () => {
    state.esFailures = 0;
    setConnected(true);
    if (state.resync) {
      // Events may have been missed while disconnected.
      state.resync = false;
      refreshAll();
    }
  };
  es.onmessage = (e) => {
    let ev;
    try { ev = parseJSON(e.data); } catch (err) { return; }
    handleEvent(ev);
  };
  es.onerror = () => {
    setConnected(false);
    state.resync = true;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an error status, such as 503 while the node
      // is stopped, or 401 for a session of the node's earlier process);
      // try again ourselves, backing off, after a request that opens a
      // new session if this one is refused.
      const delay = Math.min(15000, 1000 * 2 ** state.esFailures++);
      setTimeout(async () => {
        if (state.es !== es) return;
        try { await api('GET', '/status'); } catch (err) { /* connectEvents tries again */ }
        if (state.es === es) connectEvents();
      }, delay);
    }
  };
}

function setConnected(ok) {
  state.connected = ok;
  if (ok) {
    if (state.connLost) {
      state.connLost = false;
      renderStatusViews();
    }
    renderNodeState();
    return;
  }
  renderNodeState();
  later('conn-lost', () => {
    // A stopped node (demo mode) refuses the stream but answers requests:
    // that is no lost connection, and its own banner says so.
    if (state.connected || state.stopped) return;
    lost();
  }, CONN_GRACE_MS);
}

// lost says that the node is not answering.
function lost() {
  if (state.connLost) return;
  state.connLost = true;
  renderStatusViews();
}

function handleEvent(ev) {
  if (ev.kind === 'message' && ev.message) {
    const m = ev.message;
    if (!m.group_id) m.group_id = ev.group_id;
    const isNew = !groupMessages(m.group_id).has(m.id);
    const changed = upsertMessage(m);
    if (m.group_id === state.selected) renderMessages(m.author === myID());
    if (changed) messagesChanged(m.group_id, {});
    // A message already reacted to, edited or deleted is an old one
    // shown again as changed, not news.
    const fresh = !m.edited && !m.deleted && !(m.reactions && m.reactions.length);
    if (isNew && fresh && m.author !== myID() && m.state === 'committed') tellAbout(m);
    if (!state.groups.some((g) => g.group_id === m.group_id)) later('groups', refreshGroups, 200);
    later('status', refreshStatus, 300);
    return;
  }
  // The node holds a file it was fetching: its link appears.
  if (ev.kind === 'file' && ev.group_id) {
    loadMessages(ev.group_id, PAGE);
    return;
  }
  // "status" and anything newer: reload what the lists show.
  later('status', refreshStatus, 200);
  if (ev.kind !== 'status') later('groups', refreshGroups, 200);
}

function tellAbout(m) {
  const g = state.groups.find((x) => x.group_id === m.group_id);
  const gs = groupStatus(m.group_id);
  const name = g ? displayName(g) : gs ? gs.name : shortID(m.group_id);
  newMessage(m, authorLabel(m), name, m.group_id === state.selected, () => selectGroup(m.group_id));
}

// ---- what the page says about the node ----------------------------------------

function setPill(text, kind) {
  const p = $('node-state');
  p.textContent = text;
  p.className = 'pill pill-' + kind;
}

export function renderNodeState() {
  if (!state.token) return setPill('no token', 'bad');
  if (state.refused) return setPill('access refused', 'bad');
  if (state.connLost || !state.reachable) return setPill('node not answering', 'bad');
  if (state.stopped) return setPill('node stopped', 'bad');
  const s = state.status;
  const who = s ? (s.name || shortID(s.public_id)) : '';
  if (!state.connected) return setPill('reconnecting… ' + who, 'warn');
  setPill('online · ' + who, 'ok');
}

function renderBanners() {
  $('banner-stopped').hidden = !state.stopped || state.connLost;
  $('banner-conn').hidden = !state.connLost;
  renderQuorumBanner();
  renderOlder(); // the joined note needs the status
}

function renderDemo() {
  const b = $('demo-toggle');
  b.hidden = !state.demo.enabled;
  const running = state.demo.enabled ? state.demo.running : !state.stopped;
  b.textContent = running ? 'Stop my node' : 'Start my node';
  b.className = 'button-wide ' + (running ? 'button-danger' : 'button-primary');
  b.dataset.running = running ? 'true' : 'false';
}

// renderStatusViews redraws everything that follows the node's status.
export function renderStatusViews() {
  renderNodeState();
  renderChatHeader();
  renderBanners();
  renderMembers();
  renderNetwork();
  membership.render();
  renderReceiptsToggle();
  renderCompose();
  if (state.selected) renderMessages(false);
}

// toggleNode stops or starts the node, in demo mode.
async function toggleNode() {
  const b = $('demo-toggle');
  const stop = b.dataset.running === 'true';
  b.disabled = true;
  try {
    state.demo = await api('POST', stop ? '/node/stop' : '/node/start', {});
    markStopped(!state.demo.running);
    renderDemo();
    if (!stop) {
      connectEvents();
      refreshAll();
    } else {
      refreshStatus();
    }
  } catch (err) {
    setPill('could not ' + (stop ? 'stop' : 'start') + ' the node', 'bad');
  } finally {
    b.disabled = false;
  }
}

let started = false;

// startSync connects to the node and keeps the page up to date. After a
// new token (the login form) it just connects again.
export function startSync() {
  if (!started) {
    started = true;
    hooks.reachable = (ok) => {
      if (state.reachable === ok) return;
      state.reachable = ok;
      // A request that did not get through, with the stream down too.
      if (!ok && !state.connected) lost();
      renderNodeState();
    };
    hooks.refused = () => {
      // Stop asking: every further request would be refused (and logged) too.
      state.refused = true;
      if (state.es) state.es.close();
      forgetToken();
      showLogin('Your node does not know the access token this page had: it was started with a new one, or another program answers at its address. Run demes ui to print the address with the current token, and open or paste it.');
      renderNodeState();
    };
    hooks.stopped = () => markStopped(true);
    $('demo-toggle').addEventListener('click', toggleNode);
    setInterval(() => { if (state.token && !state.refused) refreshStatus(); }, STATUS_POLL_MS);
  }
  connectEvents();
  refreshAll();
}
