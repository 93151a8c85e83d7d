// DeMeS browser UI: what the page knows, shared by every module, and the
// lookups on it. Only app.js and the module that owns a field change it.

export const state = {
  token: null,
  session: null, // stands for the token with this node's process (api.js)
  status: null, // last api.Status
  groups: [], // [api.GroupInfo]
  selected: null, // group id
  messages: new Map(), // group id -> Map(message id -> message)
  // group id -> Map(key -> api.MemberEvent): who created the group, joined
  // and left, shown as lines of their own among the messages.
  events: new Map(),
  // group id -> { more, limit, paged }: whether messages older than those
  // loaded exist, as the largest newest-first fetch (limit) or a page
  // further back (paged) found.
  older: new Map(),
  // Every member seen in any status, by public id: a stopped node's status
  // lists no groups, but its messages still need names.
  known: new Map(),
  demo: { enabled: false, running: true },
  stopped: false,
  refused: false, // the node answered 401: the token is wrong or outdated
  reachable: true, // the last API request reached the node
  connected: false, // the event stream is open
  connLost: false, // the stream has been down long enough to say so
  resync: false,
  es: null,
  esFailures: 0,
  esTry: null, // the latest connectEvents call, so that an earlier one waiting for a session gives way
  localSeq: 0,
};

export function myID() {
  return state.status ? state.status.public_id : '';
}

export function shortID(id) {
  return id ? id.slice(0, 12) + '…' : '?';
}

// memberLabel is a member of a group's status named on a line of plain
// text (a confirmation, a receipt, the network's picture): its name, with
// its whole fingerprint after a name the node flags as shared
// (name_shared: another member's looks the same, or it can pass for no
// name or for the person's own), as authorLabel names a message's author.
export function memberLabel(m) {
  const name = m.name || shortID(m.public_id);
  return m.name && m.name_shared ? name + ' (' + (m.fingerprint || shortID(m.public_id)) + ')' : name;
}

export function groupStatus(gid) {
  if (!state.status || !gid) return null;
  return (state.status.groups || []).find((g) => g.group_id === gid) || null;
}

export function currentGroupStatus() {
  return groupStatus(state.selected);
}

export function currentGroupInfo() {
  return state.groups.find((g) => g.group_id === state.selected) || null;
}

// groupMessages is the map of a group's loaded messages, by id.
export function groupMessages(gid) {
  let map = state.messages.get(gid);
  if (!map) {
    map = new Map();
    state.messages.set(gid, map);
  }
  return map;
}

// noteEvents keeps the membership events of a page of a group's messages.
export function noteEvents(gid, events) {
  if (!events || events.length === 0) return;
  let map = state.events.get(gid);
  if (!map) {
    map = new Map();
    state.events.set(gid, map);
  }
  for (const ev of events) map.set(ev.kind + ' ' + ev.index + ' ' + ev.member, ev);
}

// memberByID finds a member in the selected group first, then in any group,
// then among those seen before.
export function memberByID(id) {
  if (!state.status) return state.known.get(id) || null;
  const g = currentGroupStatus();
  const inGroup = g && g.members.find((m) => m.public_id === id);
  if (inGroup) return inGroup;
  for (const gs of state.status.groups || []) {
    const m = gs.members.find((x) => x.public_id === id);
    if (m) return m;
  }
  return state.known.get(id) || null;
}

// stored reads, writes (value not null) or removes (value null) a key of
// localStorage ("local") or sessionStorage ("session"). The browser may
// refuse either, in a private window or when full: the page then just
// forgets, and reading gives null.
export function stored(kind, key, value) {
  try {
    const s = kind === 'session' ? window.sessionStorage : window.localStorage;
    if (value === undefined) return s.getItem(key);
    if (value === null) s.removeItem(key);
    else s.setItem(key, value);
  } catch (e) {
    /* not allowed here: forget */
  }
  return null;
}
