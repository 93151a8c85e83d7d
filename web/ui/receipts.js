// DeMeS browser UI: receipts. Which members' devices hold a message of ours
// (delivered) and which people have read it, and telling the node how far
// the person has read.
//
// The node knows both from the members' signed pings (docs/PROTOCOL.md,
// "Receipts"): each member's status says through which place in the
// group's order its device holds the history (holds_through) and its person
// has read it (read_through). A message is delivered to, or read by, a
// member whose mark reaches its place. A person who turns read receipts
// off sends none and sees none: the node then reports no read marks.

import { $, later } from './dom.js';
import { api, enc } from './api.js';
import { state, groupMessages, groupStatus, currentGroupStatus, memberLabel } from './state.js';

// posted is, per group, the place the page last told the node the person
// read through; busy the groups with a request on its way.
const posted = new Map();
const busy = new Set();

// markRead tells the node that the person has read group gid through its
// newest message in the group's order (they are looking at it). It asks
// only when that moves the mark forward; a failure is tried again the next
// time the person looks.
export async function markRead(gid) {
  let newest = null;
  for (const m of groupMessages(gid).values()) {
    if (m.state === 'committed' && m.index && (!newest || m.index > newest.index)) newest = m;
  }
  if (!newest) return;
  const gs = groupStatus(gid);
  const me = gs && gs.members.find((x) => x.self);
  const mark = Math.max(posted.get(gid) || 0, me ? me.read_through || 0 : 0);
  if (newest.index <= mark) return;
  if (busy.has(gid)) {
    later('read-' + gid, () => markRead(gid), 300);
    return;
  }
  busy.add(gid);
  try {
    const r = await api('POST', '/groups/' + enc(gid) + '/messages/' + enc(newest.id) + '/read', {});
    if (r && r.read_through) posted.set(gid, r.read_through);
  } catch (err) {
    // Nothing to show: the mark is a courtesy, and the next look tries
    // again.
  } finally {
    busy.delete(gid);
  }
}

// receiptsOf returns, for a message of ours in the group's order, the other
// members who can read it (they were members when it was sent; keepers read
// nothing), those whose devices hold it, and those who read it; null when
// there is nobody else.
export function receiptsOf(m) {
  const g = currentGroupStatus();
  if (!g || m.state !== 'committed' || !m.index) return null;
  const readers = g.members.filter((x) => !x.self && !x.keeper && (x.joined_at || 0) < m.index);
  if (!readers.length) return null;
  return {
    readers,
    holds: readers.filter((x) => (x.holds_through || 0) >= m.index),
    read: readers.filter((x) => (x.read_through || 0) >= m.index),
  };
}

// receiptSig is what a message's receipts show, for its signature: a
// message is built again when it changes.
export function receiptSig(r) {
  if (!r) return '';
  return r.holds.length + '/' + r.readers.length + ':' + r.read.map((x) => x.public_id).join(',');
}

function names(ms) {
  const n = ms.map(memberLabel);
  if (n.length <= 1) return n.join('');
  return n.slice(0, -1).join(', ') + ' and ' + n[n.length - 1];
}

// receiptWords says in a sentence who holds and who read a message, for
// its sign's title and screen readers.
export function receiptWords(r) {
  if (!r) return '';
  const all = r.readers.length;
  let s = r.holds.length === all
    ? (all === 1 ? 'Delivered to ' + names(r.readers) : 'Delivered to all ' + all + ' members')
    : 'Delivered to ' + r.holds.length + ' of ' + all + (all === 1 ? ' member' : ' members');
  if (r.read.length === all) s += all === 1 ? '; read' : '; read by everyone';
  else if (r.read.length) s += '; read by ' + names(r.read);
  return s + '.';
}

// receiptLine is the short line shown under the newest message of ours:
// who read it, or that it was delivered; empty when neither.
export function receiptLine(r) {
  if (!r) return '';
  if (r.read.length === r.readers.length) return r.readers.length === 1 ? 'Read' : 'Read by everyone';
  if (r.read.length) return 'Read by ' + names(r.read);
  if (r.holds.length === r.readers.length) return 'Delivered';
  return '';
}

// ---- the preference ------------------------------------------------------------

export function renderReceiptsToggle() {
  const box = $('receipts-toggle');
  if (!state.status || box.dataset.busy) return;
  box.checked = !!state.status.read_receipts;
  $('receipts-note').textContent = box.checked
    ? 'Members see how far you have read, and you see how far they have.'
    : 'Members do not see how far you have read, and you do not see theirs.';
}

async function toggleReceipts() {
  const box = $('receipts-toggle');
  box.dataset.busy = 'true';
  box.disabled = true;
  try {
    const p = await api('PUT', '/preferences', { read_receipts: box.checked });
    if (state.status) state.status.read_receipts = p.read_receipts;
  } catch (err) {
    box.checked = !box.checked;
    $('receipts-note').textContent = 'Could not change it: the node did not answer. Try again.';
    return;
  } finally {
    delete box.dataset.busy;
    box.disabled = false;
  }
  renderReceiptsToggle();
}

export function wireReceipts() {
  $('receipts-toggle').addEventListener('change', toggleReceipts);
}
