// DeMeS browser UI: the list of groups. Each shows its name (with a short
// id where two groups share a name), a preview of its newest message and
// its unread count; picking one opens it.

import { $, el } from './dom.js';
import { state, myID, stored, memberByID, shortID, groupStatus } from './state.js';
import { lastMessage, loadMessages, PAGE } from './messages.js';
import { markRead } from './receipts.js';
import { knows, markSeen, unreadCount, totalUnread, countText } from './unread.js';
import { renderTitle } from './notify.js';
import { renderMessages, renderOlder } from './chat.js';
import { renderStatusViews } from './sync.js';
import { closeDrawers } from './drawers.js';
import { membership } from './members.js';
import { searchGroupChanged } from './search.js';

const PREVIEW_CHARS = 90;

// displayName is a group's name, with the start of its id when another
// group of this node has the same name, so the two can be told apart.
export function displayName(g) {
  if (!g) return '';
  const name = g.name || g.group_id;
  const twins = state.groups.filter((o) => (o.name || o.group_id) === name).length;
  return twins > 1 ? name + ' · ' + g.group_id.slice(0, 6) : name;
}

// authorName is who wrote a message, as the page shows it.
export function authorName(m) {
  const mem = memberByID(m.author);
  return m.name || (mem && mem.name) || shortID(m.author);
}

// SHARED_NAME explains the fingerprint beside a name that two members go
// by, or that can pass for no name or for the person's own.
export const SHARED_NAME = 'This name looks the same as another member’s, or can pass for no name or for yours: this fingerprint of their key tells them apart';

// nameShared reports whether another member or former member of the
// message's group goes by a name that looks the same as its author's
// (display names are self-chosen, so an impostor can take one): the node
// says so on the message, and on the author in the group's member list,
// which stays current when a namesake joins after the message was loaded.
export function nameShared(m) {
  if (m.name_shared) return true;
  const g = groupStatus(m.group_id);
  const mem = g && g.members.find((x) => x.public_id === m.author);
  return !!(mem && mem.name_shared);
}

// authorFingerprint is the fingerprint of the message's author, '' when
// the page does not know it.
export function authorFingerprint(m) {
  if (m.author_fingerprint) return m.author_fingerprint;
  const mem = memberByID(m.author);
  return (mem && mem.fingerprint) || '';
}

// authorLabel is authorName for a line of plain text (a preview, a
// notification, a search result): with the author's fingerprint after a
// shared name, so that two members of the same name read apart.
export function authorLabel(m) {
  const name = authorName(m);
  const fp = nameShared(m) ? authorFingerprint(m) : '';
  return fp ? name + ' (' + fp + ')' : name;
}

function preview(gid) {
  const m = lastMessage(gid);
  if (!m) return '';
  const who = m.author === myID() ? 'You' : authorLabel(m);
  const text = m.text.replace(/\s+/g, ' ').trim();
  return who + ': ' + (text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS - 1) + '…' : text);
}

// seeing reports whether the person is looking at gid now.
function seeing(gid) {
  return gid === state.selected && document.visibilityState === 'visible';
}

export function renderGroups() {
  const list = $('group-list');
  // Rebuilding the buttons must not take the focus from a keyboard user.
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#group-list .group-item');
  const focusID = focused ? focused.dataset.groupId : null;
  const items = [];
  for (const g of state.groups) {
    const li = el('li');
    const b = el('button', 'group-item');
    b.type = 'button';
    b.dataset.groupId = g.group_id;
    const text = el('span', 'group-text');
    text.append(el('span', 'group-name', displayName(g)));
    const p = preview(g.group_id);
    if (p) text.append(el('span', 'group-preview', p));
    b.append(text);
    const n = unreadCount(g.group_id);
    if (n > 0) {
      const badge = el('span', 'unread', countText(n));
      badge.append(el('span', 'visually-hidden', ' unread'));
      b.append(badge);
    }
    if (g.group_id === state.selected) b.setAttribute('aria-current', 'true');
    b.addEventListener('click', () => {
      selectGroup(g.group_id);
      closeDrawers();
    });
    li.append(b);
    items.push(li);
  }
  list.replaceChildren(...items);
  if (focusID) {
    const again = list.querySelector('[data-group-id="' + CSS.escape(focusID) + '"]');
    if (again) again.focus();
  }
  $('groups-empty').hidden = state.groups.length > 0;
  const total = totalUnread();
  const t = $('groups-toggle-unread');
  t.hidden = total === 0;
  t.textContent = total ? countText(total) : '';
  if (total) t.append(el('span', 'visually-hidden', ' unread'));
  renderTitle();
}

// messagesChanged updates what depends on a group's messages: its seen
// mark (when the person looks at it, or it was never seen), its preview,
// the unread counts and the title.
export function messagesChanged(gid, { loaded }) {
  if ((loaded && !knows(gid)) || seeing(gid)) markSeen(gid);
  if (seeing(gid)) markRead(gid);
  renderGroups();
}

// seenNow marks the open group seen when the tab comes back into view.
export function seenNow() {
  if (!state.selected || !seeing(state.selected)) return;
  markRead(state.selected);
  if (markSeen(state.selected)) renderGroups();
}

export function selectGroup(gid) {
  if (gid !== state.selected) searchGroupChanged();
  state.selected = gid;
  if (gid) stored('session', 'demes-group', gid);
  if (gid && seeing(gid)) {
    markSeen(gid);
    markRead(gid);
  }
  renderGroups();
  renderStatusViews();
  renderMessages(true);
  renderOlder();
  if (gid) loadMessages(gid, PAGE);
  membership.loadInvites();
}

// pickGroup is the group to show after the list changed: the one shown, the
// one this tab showed last, or the first.
export function pickGroup() {
  let sel = state.selected;
  if (sel && state.groups.some((g) => g.group_id === sel)) return sel;
  const saved = stored('session', 'demes-group');
  sel = state.groups.some((g) => g.group_id === saved) ? saved : (state.groups[0] ? state.groups[0].group_id : null);
  return sel;
}
