// DeMeS browser UI: unread counts that survive a reload.
//
// The page keeps, per group, the place in the group's order of the newest
// message the person has seen (in localStorage). Unread messages are the
// committed ones of others after that place, so closing the tab and coming
// back still shows what arrived meanwhile. A group seen for the first time
// starts with nothing unread: its history is not news.

import { state, myID, groupMessages, stored } from './state.js';

const KEY = 'demes-seen';

let seen = {};
try {
  seen = JSON.parse(stored('local', KEY) || '{}') || {};
} catch (e) {
  seen = {};
}

function save() {
  stored('local', KEY, JSON.stringify(seen));
}

// newestIndex is the place of a group's newest committed message loaded.
function newestIndex(gid) {
  let max = 0;
  for (const m of groupMessages(gid).values()) {
    if (m.state === 'committed' && m.index > max) max = m.index;
  }
  return max;
}

// knows reports whether the page has a seen mark for the group.
export function knows(gid) {
  return typeof seen[gid] === 'number';
}

// markSeen records that the person has seen everything loaded in gid.
// It reports whether that changed anything.
export function markSeen(gid) {
  const idx = newestIndex(gid);
  if (knows(gid) && seen[gid] >= idx) return false;
  seen[gid] = idx;
  save();
  return true;
}

// unreadCount is the number of messages of others in gid after the mark.
export function unreadCount(gid) {
  if (!knows(gid)) return 0;
  const me = myID();
  let n = 0;
  for (const m of groupMessages(gid).values()) {
    if (m.state === 'committed' && m.index > seen[gid] && m.author !== me) n++;
  }
  return n;
}

// totalUnread is the unread count over all the node's groups.
export function totalUnread() {
  let n = 0;
  for (const g of state.groups) n += unreadCount(g.group_id);
  return n;
}

// countText is how a count shows in a badge.
export function countText(n) {
  return n > 99 ? '99+' : String(n);
}
