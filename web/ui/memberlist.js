// DeMeS browser UI: the members of the open group. Who is in it, who is
// online, who hosts, and each one's safety number; admins also get their
// actions here (members.js). How the group runs underneath (voters,
// learners, terms) is in the details panel (network.js), not here.

import { $, el, fmtMs } from './dom.js';
import { state, currentGroupStatus, shortID, memberLabel } from './state.js';
import { membership } from './members.js';
import { SHARED_NAME } from './groups.js';

export function memberName(m) {
  return m.name || shortID(m.public_id);
}

// succession is the group's preference list cut down to who can take
// over: the host, then the voters in preference order. Learners receive
// the log but cannot be elected, so they are never anyone's backup.
function succession(g) {
  const voter = new Map(g.members.map((m) => [m.public_id, m.voter || m.public_id === g.host]));
  return (g.preference || []).filter((id) => voter.get(id));
}

// prefRank is a member's place in the succession: 0 is the host (or, with
// no host, the preferred one), 1 the first backup; Infinity for learners
// and for members the ranking leaves out (offline).
export function prefRank(g, id) {
  const i = succession(g).indexOf(id);
  return i < 0 ? Infinity : i;
}

// listRank orders the members list: the succession, then the others in
// the preference order, then everybody else.
function listRank(g, id) {
  const r = prefRank(g, id);
  if (r !== Infinity) return r;
  const i = (g.preference || []).indexOf(id);
  return i < 0 ? 1e6 : 1e3 + i;
}

export function badge(text, cls, title) {
  const b = el('span', 'badge ' + (cls || ''), text);
  if (title) b.title = title;
  return b;
}

// memberRows keeps the rows of the members list by public id, with what
// they were built from, so that a status refresh rebuilds only the rows
// whose member changed: an open safety number stays open and a focused
// button keeps the focus while round-trip times tick.
const memberRows = new Map();

// groupFacts is the line above the list, in everyday words.
function groupFacts(g) {
  if (state.connLost) return 'Not connected to your node: this list may be out of date.';
  const online = g.members.filter((m) => m.online || m.self).length;
  const host = g.members.find((m) => m.public_id === g.host);
  const parts = [g.members.length + (g.members.length === 1 ? ' member' : ' members'), online + ' online'];
  parts.push(host ? 'host: ' + memberLabel(host) : 'no host right now');
  if (g.queued > 0) parts.push(g.queued + (g.queued === 1 ? ' message of yours' : ' messages of yours') + ' not in the order yet');
  if (g.removed_by) parts.push((g.removed_by_name || 'an admin') + ' removed you from this group');
  else if (g.role === 'left') parts.push('you left this group');
  return parts.join(' · ');
}

// secrecyFact says whether new keys are sealed to the members' prekeys
// (forward secrecy) or, while some member has published none, to their
// identity keys; '' when the node says neither (an older node, or a group
// this node is not a member of).
function secrecyFact(g) {
  const missing = g.no_prekey || [];
  if (missing.length > 0) return 'Forward secrecy: not yet — waiting for ' + missing.join(', ') + ' to publish a key';
  if (g.forward_secrecy) return 'Forward secrecy: on';
  return '';
}

export function renderMembers() {
  const list = $('member-list');
  const g = currentGroupStatus();
  const facts = $('group-facts');
  const secrecy = $('group-secrecy');
  const fact = g ? secrecyFact(g) : '';
  secrecy.hidden = fact === '';
  if (secrecy.textContent !== fact) secrecy.textContent = fact;
  if (!g) {
    list.replaceChildren();
    memberRows.clear();
    facts.textContent = state.stopped ? 'Your node is stopped, so it has no live view of the group.'
      : state.selected ? 'Loading…' : 'No group selected.';
    return;
  }
  facts.textContent = groupFacts(g);

  const members = g.members.slice().sort((a, b) =>
    listRank(g, a.public_id) - listRank(g, b.public_id) ||
    String(a.name).localeCompare(String(b.name)));
  const rows = [];
  for (const m of members) {
    // Everything the row shows but its online dot and its facts line,
    // which are updated in place.
    const key = JSON.stringify([g.group_id, g.name, g.host, g.admin, g.role,
      m.name, m.self, m.host, m.admin, m.safety_number, m.fingerprint, m.keeper, !!m.name_shared]);
    const old = memberRows.get(m.public_id);
    const li = old && old.key === key ? old.li : buildMemberRow(g, m);
    memberRows.set(m.public_id, { key, li });
    updateMemberLive(li, m);
    rows.push(li);
  }
  const ids = new Set(members.map((m) => m.public_id));
  for (const id of memberRows.keys()) if (!ids.has(id)) memberRows.delete(id);
  const same = rows.length === list.children.length && rows.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...rows);
}

// updateMemberLive sets what changes from one refresh to the next in a
// member's row: whether it is online and how far away it is. Without a
// connection to the node, nobody's state is known.
function updateMemberLive(li, m) {
  let live = 'unknown';
  let text = 'status unknown while your node is not answering';
  if (m.self) {
    live = state.connLost ? 'unknown' : 'online';
    text = 'you, on this device';
  } else if (!state.connLost) {
    live = m.online ? 'online' : 'offline';
    text = m.online ? 'online' + (m.rtt_ms > 0 ? ' · ' + fmtMs(m.rtt_ms) + ' away' : '') : 'offline';
    // Through a relay: messages still arrive, but slower, and the
    // relay sees that the two devices talk (never what they say).
    // Over HTTP there is no path to tell (the field is left out).
    if (m.online && m.path === 'relayed') text += ' · through a relay';
    else if (m.online && m.path === 'direct') text += ' · direct';
  }
  const dot = li.querySelector('.dot');
  dot.className = 'dot dot-' + live;
  dot.setAttribute('aria-label', live === 'unknown' ? 'status unknown' : live);
  const line = li.querySelector('.member-facts');
  if (line.textContent !== text) line.textContent = text;
}

// buildMemberRow builds a member's row of the members list; its online
// dot and facts line are filled in by updateMemberLive.
function buildMemberRow(g, m) {
  const li = el('li', 'member');
  li.dataset.publicId = m.public_id;
  const head = el('div', 'member-head');
  const dot = el('span', 'dot');
  dot.setAttribute('role', 'img');
  head.append(dot, el('strong', 'member-name', memberName(m)));
  if (m.name_shared) {
    // Display names are self-chosen: where two look the same, the
    // fingerprint says who is who.
    const mark = el('span', 'member-fp', m.fingerprint || shortID(m.public_id));
    mark.title = SHARED_NAME;
    head.append(mark);
  }
  if (m.self) head.append(el('span', 'muted', '(you)'));
  if (m.public_id === g.host || m.host) {
    head.append(badge('host', 'badge-host', 'Puts the group’s messages in order and passes them on'));
  }
  if (m.keeper) {
    head.append(badge('keeper', 'badge-keeper', 'An always-on device that keeps the group’s history and helps it put messages in order while people are offline. It cannot read the messages.'));
  }
  head.append(...membership.memberBadges(m));
  li.append(head);

  li.append(el('div', 'member-facts muted'));

  if (!m.self && m.safety_number) {
    const d = el('details', 'safety');
    d.append(el('summary', null, 'Safety number'));
    d.append(el('code', 'safety-number', m.safety_number));
    d.append(el('p', 'muted small', 'Compare it with ' + (m.name ? memberLabel(m) : 'them') + ' in person or by phone. If it differs, someone is in between.'));
    if (m.fingerprint) d.append(el('p', 'muted small', 'Fingerprint of ' + memberName(m) + '’s key: ' + m.fingerprint));
    li.append(d);
  }
  const actions = membership.memberActions(g, m);
  if (actions) li.append(actions);
  return li;
}
