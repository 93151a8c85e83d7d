// DeMeS browser UI: the messages the page holds, per group. Loading them,
// sending, and the delivery state each one shows.
//
// A message is "sending" while this page hands it to the node, "tentative"
// while it is not in the group's order yet (ours waits in the node's
// outbox, and went directly to the members online; others' reached us
// that way), and "committed" once it has its place in the group's order.
// The page shows the first two as a clock and the last as a check.

import { api, enc } from './api.js';
import { state, myID, groupMessages, noteEvents } from './state.js';
import { $, later } from './dom.js';
import { plain } from './errors.js';
import { renderMessages, renderOlder } from './chat.js';
import { messagesChanged } from './groups.js';
import { refreshStatus } from './sync.js';
import { keepReady, attachmentSig } from './files.js';

// How long a send waits for the commit before the API answers "tentative".
// Short, so the message shows its real state quickly; the commit then
// arrives as an event.
const SEND_WAIT_MS = 1000;
// PAGE is how many messages one fetch brings when a group opens, and then
// each time older ones are asked for (the reader scrolls to the top): a
// group of a million messages opens as fast as one of ten.
export const PAGE = 100;
// PREVIEW is how many of the newest messages the page fetches for a group
// that is not open: enough for its preview and its unread count.
export const PREVIEW = 50;

// upsertMessage adds or updates a message and reports whether anything
// changed. A committed message never goes back to tentative, and a real
// message of ours replaces the "sending" placeholder with the same text.
//
// The node announces a message of ours as tentative the moment it is in
// the outbox, usually a few milliseconds before it commits. While our send
// request still waits for the commit, such a message is shown as
// "sending" (inflight), not "tentative": tentative means it is still
// waiting after the wait, and the group probably cannot order it now.
export function upsertMessage(m) {
  if (!m || !m.group_id || !m.id) return false;
  const map = groupMessages(m.group_id);
  if (!m.local && m.author && m.author === myID() && !map.has(m.id)) {
    for (const [id, p] of map) {
      if (p.local && p.state === 'sending' && p.text === m.text) {
        map.delete(id);
        p.replacedBy = m.id;
        if (m.state === 'tentative') m = Object.assign({}, m, { inflight: true });
        break;
      }
    }
  }
  const old = map.get(m.id);
  if (old && old.state === 'committed' && m.state !== 'committed') return false;
  m = keepReady(old, m);
  if (old && old.state === m.state && old.index === m.index && old.text === m.text && old.delivered === m.delivered &&
    !!old.edited === !!m.edited && !!old.deleted === !!m.deleted &&
    JSON.stringify(old.reactions || []) === JSON.stringify(m.reactions || []) && attachmentSig(old) === attachmentSig(m)) return false;
  // A delivery count arriving while our send still waits keeps it "sending".
  if (old && old.inflight && m.state === 'tentative') m = Object.assign({}, m, { inflight: true });
  map.set(m.id, m);
  return true;
}

// sortedMessages is a group's messages in the order the page shows them:
// the committed ones in the group's order, then the tentative ones in the
// order the node gives them (each after what its author had seen), then
// ours this page is still handing over.
export function sortedMessages(gid) {
  const list = Array.from(groupMessages(gid).values());
  const rank = (m) => (m.state === 'committed' ? 0 : m.order ? 1 : 2);
  list.sort((a, b) => rank(a) - rank(b) ||
    (rank(a) === 0 ? a.index - b.index : 0) ||
    (rank(a) === 1 ? a.order - b.order : 0) ||
    String(a.sent_at).localeCompare(String(b.sent_at)) ||
    String(a.id).localeCompare(String(b.id)));
  return list;
}

// shownState is the delivery state a message shows.
export function shownState(m) {
  return m.inflight && m.state === 'tentative' ? 'sending' : m.state;
}

// loadMessages fetches the newest limit messages of a group; older ones
// come a page at a time, when asked for (loadOlder), so that a long
// history does not weigh on opening the group. The node answers a page
// and whether older messages exist (api.MessagePage).
export function loadMessages(gid, limit) {
  // One fetch at a time per group and size: a start asks from several
  // places at once.
  const key = gid + ' ' + limit;
  if (!loading.has(key)) loading.set(key, fetchNewest(gid, limit).finally(() => loading.delete(key)));
  return loading.get(key);
}

const loading = new Map();

async function fetchNewest(gid, limit) {
  let page;
  try {
    page = await api('GET', '/groups/' + enc(gid) + '/messages?limit=' + limit);
  } catch (err) {
    return;
  }
  const list = page.messages;
  noteEvents(gid, page.events);
  // A gap: the page held messages older than this page, but not the one
  // right before it (the event stream was down while more than a page
  // came). Older pages load from the first message held, so the held ones
  // before the gap go, and load again when scrolled to.
  const gap = page.more && list.length > 0 && list[0].state === 'committed' && await gapBefore(gid, list[0]);
  if (gap) forgetBefore(gid, list[0].index);
  for (const m of list) {
    if (!m.group_id) m.group_id = gid;
    upsertMessage(m);
  }
  // Whether there is more before what is loaded: known from the largest
  // newest-first fetch, until pages further back take over.
  const o = state.older.get(gid);
  if (gap || !o || (!o.paged && limit > o.limit)) state.older.set(gid, { more: page.more, limit, paged: false });
  messagesChanged(gid, { loaded: true });
  if (gid === state.selected) {
    renderMessages(true);
    renderOlder();
  }
}

// gapBefore reports whether the page holds committed messages of the group
// older than first but not the one right before it. It asks the node only
// when every message held is older than first.
async function gapBefore(gid, first) {
  const map = groupMessages(gid);
  let newest = 0;
  for (const m of map.values()) if (m.state === 'committed') newest = Math.max(newest, m.index);
  if (newest === 0 || newest >= first.index) return false;
  try {
    const prev = await api('GET', '/groups/' + enc(gid) + '/messages?limit=1&before=' + enc(first.id));
    return !prev.messages.length || !map.has(prev.messages[0].id);
  } catch (err) {
    return true;
  }
}

// forgetBefore drops the group's committed messages older than index.
function forgetBefore(gid, index) {
  const map = groupMessages(gid);
  for (const [id, m] of map) if (m.state === 'committed' && m.index < index) map.delete(id);
}

// olderLoading holds the groups whose older page is on its way: scrolling
// asks again and again while it is.
const olderLoading = new Set();

// loadOlder fetches the page of messages before the first one loaded,
// keeping what the reader sees in place.
export async function loadOlder() {
  const gid = state.selected;
  const o = gid && state.older.get(gid);
  if (!o || !o.more || olderLoading.has(gid)) return;
  const first = sortedMessages(gid).find((m) => m.state === 'committed');
  if (!first) return;
  olderLoading.add(gid);
  $('load-older').disabled = true;
  let page;
  try {
    page = await api('GET', '/groups/' + enc(gid) + '/messages?limit=' + PAGE + '&before=' + enc(first.id));
  } catch (err) {
    return;
  } finally {
    olderLoading.delete(gid);
    $('load-older').disabled = false;
  }
  noteEvents(gid, page.events);
  for (const m of page.messages) {
    if (!m.group_id) m.group_id = gid;
    upsertMessage(m);
  }
  state.older.set(gid, { more: page.more, limit: o.limit, paged: true });
  if (gid === state.selected) renderMessages(false, true);
  renderOlder();
}

// sendText sends text to a group, as a reply to the message replyTo if
// set, showing it at once as "sending".
export async function sendText(gid, text, replyTo) {
  const local = {
    id: 'local-' + ++state.localSeq,
    local: true,
    group_id: gid,
    author: myID(),
    name: state.status ? state.status.name : '',
    text,
    reply_to: replyTo || undefined,
    sent_at: new Date().toISOString(),
    state: 'sending',
    index: 0,
  };
  upsertMessage(local);
  renderMessages(true);
  try {
    const m = await api('POST', '/groups/' + enc(gid) + '/messages', Object.assign({ text, timeout_ms: SEND_WAIT_MS }, replyTo ? { reply_to: replyTo } : {}));
    if (!m.group_id) m.group_id = gid;
    groupMessages(gid).delete(local.id);
    landed(gid, m.id);
    upsertMessage(m);
  } catch (err) {
    if (local.replacedBy) {
      // The node has it (it told us so), whatever happened to the answer.
      landed(gid, local.replacedBy);
    } else {
      local.state = 'failed';
      local.error = plain(err, 'send');
      groupMessages(gid).set(local.id, Object.assign({}, local));
    }
  }
  if (gid === state.selected) renderMessages(false);
  messagesChanged(gid, {});
  later('status', refreshStatus, 100);
}

// retry sends a message that failed again, in place of the failed one.
export function retry(m) {
  groupMessages(m.group_id).delete(m.id);
  sendText(m.group_id, m.text, m.reply_to);
}

// landed ends the "sending" of a message of ours: its send request is over.
function landed(gid, id) {
  const map = groupMessages(gid);
  const m = map.get(id);
  if (m && m.inflight) map.set(id, Object.assign({}, m, { inflight: false }));
}

// lastMessage is a group's newest message, for its preview in the list.
export function lastMessage(gid) {
  const list = sortedMessages(gid).filter((m) => m.state !== 'failed');
  return list.length ? list[list.length - 1] : null;
}
