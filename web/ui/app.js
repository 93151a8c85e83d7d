// DeMeS browser UI. Plain JavaScript, no build step, no libraries.
//
// Rules this file keeps, because the page shows text written by other people:
//  - Text from the network (messages, names, ids, errors) goes into the page
//    with textContent only, never innerHTML or insertAdjacentHTML.
//  - No inline script or style: the server's Content-Security-Policy forbids
//    both, so styling is by class and the SVG is built with createElementNS.
//  - The API token comes from the address fragment once, then lives in
//    sessionStorage (this tab only) and never appears in the address bar.
'use strict';

(function () {
  const API = '/api/v1';
  // How long a send waits for the commit before the API answers "queued".
  // Short, so the message shows its real state quickly; the commit then
  // arrives as an event.
  const SEND_WAIT_MS = 1000;
  // PAGE is how many messages one fetch brings: the newest when a group
  // opens, then older ones on request.
  const PAGE = 200;
  const STATUS_POLL_MS = 5000;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    token: null,
    status: null, // last node.Status
    groups: [], // [node.GroupInfo]
    selected: null, // group id
    messages: new Map(), // group id -> Map(message id -> message)
    older: new Map(), // group id -> whether older messages than those loaded exist
    // Every member seen in any status, by public id: a stopped node's status
    // lists no groups, but its messages still need names and fingerprints.
    known: new Map(),
    unread: new Map(), // group id -> count
    demo: { enabled: false, running: true },
    stopped: false,
    refused: false, // the node answered 401: the token is wrong or outdated
    reachable: true,
    connected: false,
    resync: false,
    es: null,
    esFailures: 0,
    localSeq: 0,
    timers: {},
  };

  const $ = (id) => document.getElementById(id);

  // membership is members.js's part of the page (admins, removals, leaving,
  // open invites, settings), set up in main.
  let membership = null;

  // el makes an element with a class and text; the text is always textContent.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // ---- token ----------------------------------------------------------------

  function readToken() {
    const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (m) {
      state.token = decodeURIComponent(m[1]);
      try { sessionStorage.setItem('demes-token', state.token); } catch (e) { /* private mode: keep it in memory */ }
      history.replaceState(null, '', location.pathname + location.search);
    } else {
      try { state.token = sessionStorage.getItem('demes-token'); } catch (e) { state.token = null; }
    }
  }

  function tokenRefused() {
    // Stop asking: every further request would be refused (and logged) too.
    state.refused = true;
    if (state.es) state.es.close();
    try { sessionStorage.removeItem('demes-token'); } catch (e) { /* ignore */ }
    const b = $('banner-token');
    b.textContent = 'Your node refused the access token. Run demes ui to print the address with the current token (it ends in #token=…), and open that.';
    b.hidden = false;
    setPill('access refused', 'bad');
  }

  // ---- API --------------------------------------------------------------------

  class APIError extends Error {
    constructor(message, status, hint) {
      super(message);
      this.status = status;
      this.hint = hint || '';
    }
  }

  async function api(method, path, body) {
    if (state.refused) throw new APIError('the node refused the access token', 401, '');
    const opts = { method, headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, opts);
    } catch (err) {
      state.reachable = false;
      renderNodeState();
      throw new APIError('cannot reach your node (is demes serve running?)', 0, '');
    }
    state.reachable = true;
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const msg = (data && data.error) || res.status + ' ' + res.statusText;
      if (res.status === 401) tokenRefused();
      if (res.status === 503) markStopped(true);
      throw new APIError(msg, res.status, data && data.hint);
    }
    return data;
  }

  const enc = encodeURIComponent;

  function qrURL(text) {
    return API + '/qr?text=' + enc(text) + '&token=' + enc(state.token);
  }

  function errorText(err) {
    return err.hint ? err.message + ' (' + err.hint + ')' : err.message;
  }

  // later runs fn once after ms, however often it is asked in between.
  function later(name, fn, ms) {
    if (state.timers[name]) return;
    state.timers[name] = setTimeout(() => {
      state.timers[name] = null;
      fn();
    }, ms);
  }

  // ---- loading ------------------------------------------------------------------

  async function refreshAll() {
    await Promise.allSettled([refreshDemo(), refreshStatus(), refreshGroups()]);
    if (state.selected) await loadMessages(state.selected);
  }

  async function refreshStatus() {
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
    // Invites come and go with the log, as the status does.
    later('invites', () => membership.loadInvites(), 100);
  }

  async function refreshGroups() {
    try {
      state.groups = await api('GET', '/groups');
    } catch (err) {
      return;
    }
    let sel = state.selected;
    if (!sel || !state.groups.some((g) => g.group_id === sel)) {
      let saved = null;
      try { saved = sessionStorage.getItem('demes-group'); } catch (e) { /* ignore */ }
      sel = state.groups.some((g) => g.group_id === saved) ? saved : (state.groups[0] ? state.groups[0].group_id : null);
    }
    renderGroups();
    if (sel !== state.selected) selectGroup(sel);
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

  // loadMessages fetches the newest page of a group's messages; older ones
  // come a page at a time, when asked for (loadOlder), so that a long
  // history does not weigh on opening the group.
  async function loadMessages(gid) {
    let list;
    try {
      list = await api('GET', '/groups/' + enc(gid) + '/messages?limit=' + PAGE);
    } catch (err) {
      return;
    }
    for (const m of list) {
      if (!m.group_id) m.group_id = gid;
      upsertMessage(m);
    }
    // Whether there is more before what is loaded: known once, from the
    // first page; loadOlder keeps it up to date.
    if (!state.older.has(gid)) state.older.set(gid, list.length === PAGE);
    if (gid === state.selected) {
      renderMessages(true);
      renderOlder();
    }
  }

  async function loadOlder() {
    const gid = state.selected;
    if (!gid || !state.older.get(gid)) return;
    const first = sortedMessages(gid).find((m) => m.state === 'committed');
    if (!first) return;
    const button = $('load-older');
    button.disabled = true;
    let list;
    try {
      list = await api('GET', '/groups/' + enc(gid) + '/messages?limit=' + PAGE + '&before=' + enc(first.id));
    } catch (err) {
      button.disabled = false;
      return;
    }
    for (const m of list) {
      if (!m.group_id) m.group_id = gid;
      upsertMessage(m);
    }
    state.older.set(gid, list.length === PAGE);
    if (gid === state.selected) {
      // Keep what the reader sees in place as older lines come in above.
      const ml = $('message-list');
      const fromEnd = ml.scrollHeight - ml.scrollTop;
      renderMessages(false);
      ml.scrollTop = ml.scrollHeight - fromEnd;
    }
    button.disabled = false;
    renderOlder();
  }

  function renderOlder() {
    $('load-older').hidden = !state.selected || !state.older.get(state.selected);
  }

  function markStopped(stopped) {
    if (state.stopped === stopped) return;
    state.stopped = stopped;
    renderBanners();
    renderCompose();
    renderNodeState();
    renderDemo();
  }

  // ---- events -------------------------------------------------------------------

  function connectEvents() {
    if (state.es) state.es.close();
    if (state.refused) return;
    const es = new EventSource(API + '/events?token=' + enc(state.token));
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
      try { ev = JSON.parse(e.data); } catch (err) { return; }
      handleEvent(ev);
    };
    es.onerror = () => {
      setConnected(false);
      state.resync = true;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an error status, such as 503 while the node
        // is stopped); try again ourselves, backing off.
        const delay = Math.min(15000, 1000 * 2 ** state.esFailures++);
        setTimeout(() => { if (state.es === es) connectEvents(); }, delay);
      }
    };
  }

  function setConnected(ok) {
    state.connected = ok;
    if (ok) {
      $('banner-conn').hidden = true;
      renderNodeState();
      return;
    }
    // A reconnect usually takes a moment; do not flash the banner for it.
    later('conn-banner', () => {
      $('banner-conn').hidden = state.connected || state.stopped;
      renderNodeState();
    }, 1500);
  }

  function handleEvent(ev) {
    if (ev.kind === 'message' && ev.message) {
      const m = ev.message;
      if (!m.group_id) m.group_id = ev.group_id;
      const changed = upsertMessage(m);
      if (m.group_id === state.selected) {
        renderMessages(m.author === myID());
      } else if (changed && m.author !== myID() && m.state === 'committed') {
        state.unread.set(m.group_id, (state.unread.get(m.group_id) || 0) + 1);
        renderGroups();
      }
      if (!state.groups.some((g) => g.group_id === m.group_id)) later('groups', refreshGroups, 200);
      later('status', refreshStatus, 300);
      return;
    }
    // "status" and anything newer: reload what the lists show.
    later('status', refreshStatus, 200);
    if (ev.kind !== 'status') later('groups', refreshGroups, 200);
  }

  // ---- messages -----------------------------------------------------------------

  function myID() {
    return state.status ? state.status.public_id : '';
  }

  function groupMessages(gid) {
    let map = state.messages.get(gid);
    if (!map) {
      map = new Map();
      state.messages.set(gid, map);
    }
    return map;
  }

  // upsertMessage adds or updates a message and reports whether anything
  // changed. A committed message never goes back to queued, and a real
  // message of ours replaces the "sending" placeholder with the same text.
  //
  // The node announces a message of ours as queued the moment it is in the
  // outbox, usually a few milliseconds before it commits. While our send
  // request still waits for the commit, such a message is shown as
  // "sending…" (inflight), not "queued": queued means it is still waiting
  // after the wait, and the group probably has no quorum.
  function upsertMessage(m) {
    if (!m || !m.group_id || !m.id) return false;
    const map = groupMessages(m.group_id);
    if (!m.local && m.author && m.author === myID() && !map.has(m.id)) {
      for (const [id, p] of map) {
        if (p.local && p.state === 'sending' && p.text === m.text) {
          map.delete(id);
          p.replacedBy = m.id;
          if (m.state === 'queued') m = Object.assign({}, m, { inflight: true });
          break;
        }
      }
    }
    const old = map.get(m.id);
    if (old && old.state === 'committed' && m.state !== 'committed') return false;
    if (old && old.state === m.state && old.index === m.index && old.text === m.text) return false;
    map.set(m.id, m);
    return true;
  }

  function sortedMessages(gid) {
    const list = Array.from(groupMessages(gid).values());
    const rank = (m) => (m.state === 'committed' ? 0 : 1);
    list.sort((a, b) => rank(a) - rank(b) ||
      (rank(a) === 0 ? a.index - b.index : 0) ||
      String(a.sent_at).localeCompare(String(b.sent_at)) ||
      String(a.id).localeCompare(String(b.id)));
    return list;
  }

  async function sendText(gid, text) {
    const local = {
      id: 'local-' + ++state.localSeq,
      local: true,
      group_id: gid,
      author: myID(),
      name: state.status ? state.status.name : '',
      text,
      sent_at: new Date().toISOString(),
      state: 'sending',
      index: 0,
    };
    upsertMessage(local);
    renderMessages(true);
    try {
      const m = await api('POST', '/groups/' + enc(gid) + '/messages', { text, timeout_ms: SEND_WAIT_MS });
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
        local.error = errorText(err);
        groupMessages(gid).set(local.id, Object.assign({}, local));
      }
    }
    if (gid === state.selected) renderMessages(false);
    later('status', refreshStatus, 100);
  }

  // landed ends the "sending…" of a message of ours: its send request is over.
  function landed(gid, id) {
    const map = groupMessages(gid);
    const m = map.get(id);
    if (m && m.inflight) map.set(id, Object.assign({}, m, { inflight: false }));
  }

  // shownState is the delivery state a message shows.
  function shownState(m) {
    return m.inflight && m.state === 'queued' ? 'sending' : m.state;
  }

  function sendCompose() {
    const box = $('compose');
    const gid = state.selected;
    const text = box.value;
    if (!gid || state.stopped || text.trim() === '') return;
    box.value = '';
    sendText(gid, text);
  }

  // ---- rendering: groups ------------------------------------------------------------

  function renderGroups() {
    const list = $('group-list');
    list.replaceChildren();
    for (const g of state.groups) {
      const li = el('li');
      const b = el('button', 'group-item');
      b.type = 'button';
      b.dataset.groupId = g.group_id;
      b.append(el('span', 'group-name', g.name || g.group_id));
      const n = state.unread.get(g.group_id) || 0;
      if (n > 0) {
        const badge = el('span', 'unread', n);
        badge.setAttribute('aria-label', n + ' unread');
        b.append(badge);
      }
      if (g.group_id === state.selected) b.setAttribute('aria-current', 'true');
      b.addEventListener('click', () => selectGroup(g.group_id));
      li.append(b);
      list.append(li);
    }
    $('groups-empty').hidden = state.groups.length > 0;
  }

  function selectGroup(gid) {
    state.selected = gid;
    if (gid) {
      state.unread.delete(gid);
      try { sessionStorage.setItem('demes-group', gid); } catch (e) { /* ignore */ }
    }
    renderGroups();
    renderStatusViews();
    renderMessages(true);
    renderOlder();
    if (gid) loadMessages(gid);
    membership.loadInvites();
  }

  function currentGroupInfo() {
    return state.groups.find((g) => g.group_id === state.selected) || null;
  }

  function currentGroupStatus() {
    if (!state.status || !state.selected) return null;
    return (state.status.groups || []).find((g) => g.group_id === state.selected) || null;
  }

  // ---- rendering: chat ----------------------------------------------------------------

  function memberByID(id) {
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

  function shortID(id) {
    return id ? id.slice(0, 12) + '…' : '?';
  }

  function authorName(m) {
    const mem = memberByID(m.author);
    return m.name || (mem && mem.name) || shortID(m.author);
  }

  function authorFingerprint(m) {
    if (state.status && m.author === state.status.public_id && state.status.fingerprint) {
      return state.status.fingerprint.slice(0, 9);
    }
    const mem = memberByID(m.author);
    return mem && mem.fingerprint ? mem.fingerprint.slice(0, 9) : shortID(m.author);
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
  }

  const stateText = {
    sending: ['sending…', 'Handing the message to your node.'],
    queued: ['queued', 'In your outbox: it will be sent, exactly once, when the group can commit it.'],
    committed: ['committed', 'In the group’s log: every member sees it in this place.'],
    failed: ['not sent', 'Your node did not take the message.'],
  };

  function messageSignature(m) {
    return [shownState(m), m.index, m.text, authorName(m), authorFingerprint(m), m.error || ''].join('\u0000');
  }

  function buildMessage(m) {
    const li = el('li', 'msg');
    li.dataset.id = m.id;
    li.dataset.state = shownState(m);
    li.dataset.sig = messageSignature(m);
    if (m.author && m.author === myID()) li.classList.add('mine');

    const meta = el('div', 'msg-meta');
    meta.append(el('span', 'msg-author', authorName(m)));
    const fp = el('span', 'msg-fp', authorFingerprint(m));
    fp.title = 'Fingerprint of the author’s key';
    meta.append(fp);
    const t = el('time', 'msg-time', fmtTime(m.sent_at));
    t.dateTime = m.sent_at;
    t.title = new Date(m.sent_at).toString();
    meta.append(t);
    const [label, help] = stateText[shownState(m)] || [m.state, ''];
    const st = el('span', 'msg-state state-' + shownState(m), label);
    st.title = help;
    meta.append(st);
    li.append(meta);

    // The message text: textContent only, whatever it contains.
    li.append(el('div', 'msg-text', m.text));

    if (m.state === 'failed') {
      const row = el('div', 'msg-error');
      row.append(el('span', null, m.error || 'not sent'));
      const retry = el('button', 'button-small', 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', () => {
        groupMessages(m.group_id).delete(m.id);
        sendText(m.group_id, m.text);
      });
      row.append(retry);
      li.append(row);
    }
    return li;
  }

  function renderMessages(scrollToEnd) {
    const list = $('message-list');
    const gid = state.selected;
    const msgs = gid ? sortedMessages(gid) : [];
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
    const existing = new Map();
    for (const li of Array.from(list.children)) existing.set(li.dataset.id, li);
    let prev = null;
    for (const m of msgs) {
      let li = existing.get(m.id);
      existing.delete(m.id);
      if (!li || li.dataset.sig !== messageSignature(m)) {
        const fresh = buildMessage(m);
        if (li) li.replaceWith(fresh);
        li = fresh;
      }
      const want = prev ? prev.nextSibling : list.firstChild;
      if (li !== want) list.insertBefore(li, want);
      prev = li;
    }
    for (const li of existing.values()) li.remove();
    $('messages-empty').hidden = !gid || msgs.length > 0;
    if (scrollToEnd || nearEnd) list.scrollTop = list.scrollHeight;
  }

  function renderCompose() {
    // A group this node left stays readable, and nothing more.
    const ok = !!state.selected && !state.stopped && !membership.isLeft(currentGroupStatus());
    $('compose').disabled = !ok;
    $('send-button').disabled = !ok;
    $('invite-button').disabled = !ok;
    $('export-button').disabled = !state.selected || state.stopped;
  }

  function renderChatHeader() {
    const g = currentGroupInfo();
    $('chat-title').textContent = g ? g.name || g.group_id : 'No group selected';
    renderCompose();
  }

  function renderBanners() {
    $('banner-stopped').hidden = !state.stopped;
    if (state.stopped) $('banner-conn').hidden = true;
    const gs = currentGroupStatus();
    $('banner-quorum').hidden = !(gs && !state.stopped && gs.has_quorum === false);
  }

  function setPill(text, kind) {
    const p = $('node-state');
    p.textContent = text;
    p.className = 'pill pill-' + kind;
  }

  function renderNodeState() {
    if (!state.token) return setPill('no token', 'bad');
    if (state.refused) return setPill('access refused', 'bad');
    if (!state.reachable) return setPill('node unreachable', 'bad');
    if (state.stopped) return setPill('node stopped', 'bad');
    const s = state.status;
    const who = s ? (s.name || shortID(s.public_id)) : '';
    if (!state.connected) return setPill('reconnecting… ' + who, 'warn');
    setPill('online · ' + who, 'ok');
  }

  function renderDemo() {
    const b = $('demo-toggle');
    b.hidden = !state.demo.enabled;
    const running = state.demo.enabled ? state.demo.running : !state.stopped;
    b.textContent = running ? 'Stop my node' : 'Start my node';
    b.className = running ? 'button-danger' : 'button-primary';
    b.dataset.running = running ? 'true' : 'false';
  }

  function renderStatusViews() {
    renderNodeState();
    renderChatHeader();
    renderBanners();
    renderMembers();
    renderNetwork();
    membership.render();
    if (state.selected) renderMessages(false);
  }

  // ---- rendering: members ----------------------------------------------------------

  function fmtMs(x) {
    if (!(x > 0)) return '';
    if (x < 0.1) return '< 0.1 ms';
    return (x < 10 ? x.toFixed(1) : String(Math.round(x))) + ' ms';
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
  function prefRank(g, id) {
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

  function badge(text, cls, title) {
    const b = el('span', 'badge ' + (cls || ''), text);
    if (title) b.title = title;
    return b;
  }

  // memberRows keeps the rows of the members list by public id, with what
  // they were built from, so that a status refresh rebuilds only the rows
  // whose member changed: an open safety number stays open and a focused
  // button keeps the focus while round-trip times tick.
  const memberRows = new Map();

  function renderMembers() {
    const list = $('member-list');
    const g = currentGroupStatus();
    const facts = $('group-facts');
    if (!g) {
      list.replaceChildren();
      memberRows.clear();
      facts.textContent = state.stopped ? 'Your node is stopped, so it has no live view of the group.'
        : state.selected ? 'Loading…' : 'No group selected.';
      return;
    }
    const hostMember = g.members.find((m) => m.public_id === g.host);
    const parts = [
      hostMember ? 'host: ' + (hostMember.name || shortID(hostMember.public_id)) : 'no host',
      'term ' + g.term,
      g.committed + ' log entries',
    ];
    if (g.queued > 0) parts.push(g.queued + ' queued');
    if (g.role === 'left') parts.push('you left this group');
    facts.textContent = parts.join(' · ');
    facts.title = 'The term counts elections. The log holds messages and membership changes, in the order every member sees them.';

    const members = g.members.slice().sort((a, b) =>
      listRank(g, a.public_id) - listRank(g, b.public_id) ||
      String(a.name).localeCompare(String(b.name)));
    const rows = [];
    for (const m of members) {
      const rank = prefRank(g, m.public_id);
      // Everything the row shows but its online dot and its facts line,
      // which are updated in place.
      const key = JSON.stringify([g.group_id, g.name, g.host, g.admin, g.role, rank,
        m.name, m.self, m.host, m.voter, m.admin, m.safety_number]);
      const old = memberRows.get(m.public_id);
      const li = old && old.key === key ? old.li : buildMemberRow(g, m, rank);
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
  // member's row: whether it is online and its round-trip time.
  function updateMemberLive(li, m) {
    const on = !!(m.online || m.self);
    const dot = li.querySelector('.dot');
    dot.className = 'dot ' + (on ? 'dot-online' : 'dot-offline');
    dot.setAttribute('aria-label', on ? 'online' : 'offline');
    const facts = [m.fingerprint || shortID(m.public_id)];
    if (m.self) facts.push('this node');
    else if (!m.online) facts.push('offline');
    else facts.push(m.rtt_ms > 0 ? 'RTT ' + fmtMs(m.rtt_ms) : 'RTT unknown');
    const text = facts.join(' · ');
    const line = li.querySelector('.member-facts');
    if (line.textContent !== text) line.textContent = text;
  }

  // buildMemberRow builds a member's row of the members list; its online
  // dot and facts line are filled in by updateMemberLive.
  function buildMemberRow(g, m, rank) {
    const li = el('li', 'member');
    li.dataset.publicId = m.public_id;
    const head = el('div', 'member-head');
    const dot = el('span', 'dot ' + (m.online || m.self ? 'dot-online' : 'dot-offline'));
    dot.setAttribute('role', 'img');
    dot.setAttribute('aria-label', m.online || m.self ? 'online' : 'offline');
    head.append(dot, el('strong', 'member-name', m.name || shortID(m.public_id)));
    if (m.self) head.append(el('span', 'muted', '(you)'));
    if (m.public_id === g.host || m.host) {
      head.append(badge('host', 'badge-host', 'Orders and relays the group’s messages'));
    } else if (rank === 0) {
      head.append(badge('preferred host', 'badge-backup', 'Best placed to host once the group has a quorum again'));
    } else if (rank !== Infinity) {
      head.append(badge('backup ' + rank, 'badge-backup', rank === 1 ? 'Takes over if the host goes away'
        : 'Takes over if the host and the ' + (rank === 2 ? 'first backup' : rank - 1 + ' backups before it') + ' go away'));
    }
    head.append(m.voter ? badge('voter', '', 'Votes for the host; a majority of the voters must be online for messages to commit')
      : badge('learner', '', 'Receives every message but does not vote'));
    head.append(...membership.memberBadges(m));
    li.append(head);

    li.append(el('div', 'member-facts muted'));

    if (!m.self && m.safety_number) {
      const d = el('details', 'safety');
      d.append(el('summary', null, 'Safety number'));
      d.append(el('code', 'safety-number', m.safety_number));
      d.append(el('p', 'muted small', 'Compare it with ' + (m.name || 'them') + ' in person or by phone. If it differs, someone is in between.'));
      li.append(d);
    }
    const actions = membership.memberActions(g, m);
    if (actions) li.append(actions);
    return li;
  }

  // ---- rendering: network picture ---------------------------------------------------

  function renderNetwork() {
    const box = $('network');
    box.replaceChildren();
    const g = currentGroupStatus();
    if (!g || g.members.length === 0) {
      box.append(el('p', 'muted', state.stopped ? 'Not while your node is stopped.' : 'No group selected.'));
      return;
    }
    const size = 320;
    const c = size / 2;
    const members = g.members.slice().sort((a, b) => String(a.public_id).localeCompare(String(b.public_id)));
    const n = members.length;
    const R = n === 1 ? 0 : 108;
    // Circles shrink when many members share the ring, so they do not overlap.
    const r = n < 3 ? 22 : Math.max(8, Math.min(22, 0.4 * 2 * R * Math.sin(Math.PI / n)));
    const pos = new Map();
    members.forEach((m, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      pos.set(m.public_id, { x: c + R * Math.cos(a), y: c + R * Math.sin(a) });
    });
    // The picture is as tall as what it shows: the ring, the circles and
    // the names (above the circles in the upper half, below in the lower).
    let top = Infinity;
    let bottom = -Infinity;
    for (const p of pos.values()) {
      const above = p.y < c - 20;
      top = Math.min(top, above ? p.y - r - 22 : p.y - r - 4);
      bottom = Math.max(bottom, above ? p.y + r + 4 : p.y + r + 22);
    }
    const hostMember = members.find((m) => m.public_id === g.host);
    const root = svg('svg', {
      viewBox: [0, Math.floor(top), size, Math.ceil(bottom - top)].join(' '),
      class: 'network-svg',
      role: 'img',
      'aria-label': 'Network of ' + n + ' members; host: ' + (hostMember ? hostMember.name || shortID(hostMember.public_id) : 'none'),
    });
    root.append(svg('title', {}, 'Members and their round-trip times'));

    const edges = svg('g', { class: 'edges' });
    const labels = svg('g', { class: 'edge-labels' });
    for (const e of g.edges || []) {
      const a = pos.get(e.a);
      const b = pos.get(e.b);
      if (!a || !b) continue;
      const touchesHost = e.a === g.host || e.b === g.host;
      edges.append(svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'edge' + (touchesHost ? ' edge-host' : '') }));
      // Not at the exact middle, so crossing diagonals keep their labels apart.
      const t = 0.42;
      labels.append(svg('text', { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t, class: 'edge-label', 'text-anchor': 'middle', 'dominant-baseline': 'middle' }, fmtMs(e.rtt_ms) || '?'));
    }
    root.append(edges, labels);

    const nodes = svg('g', { class: 'nodes' });
    for (const m of members) {
      const p = pos.get(m.public_id);
      const rank = prefRank(g, m.public_id);
      let cls = 'node';
      if (m.public_id === g.host) cls += ' node-host';
      if (m.self) cls += ' node-self';
      if (!m.online && !m.self) cls += ' node-offline';
      if (!m.voter) cls += ' node-learner';
      const grp = svg('g', { class: cls, 'data-public-id': m.public_id });
      let role = '';
      if (m.public_id === g.host) role = ': host';
      else if (rank === 0) role = ': preferred host';
      else if (rank !== Infinity) role = ': backup ' + rank;
      else if (!m.voter) role = ': learner';
      grp.append(svg('title', {}, (m.name || m.public_id) + role + (m.self || m.online ? '' : ' (offline)')));
      grp.append(svg('circle', { cx: p.x, cy: p.y, r }));
      grp.append(svg('text', { x: p.x, y: p.y, class: 'node-rank', 'text-anchor': 'middle', 'dominant-baseline': 'central' }, rank === Infinity ? '·' : rank + 1));
      let name = m.name || shortID(m.public_id);
      if (name.length > 14) name = name.slice(0, 13) + '…';
      if (m.self) name += ' (you)';
      // Names go on the side away from the centre, where no line runs.
      const above = p.y < c - 20;
      grp.append(svg('text', { x: p.x, y: above ? p.y - r - 8 : p.y + r + 16, class: 'node-name', 'text-anchor': 'middle' }, name));
      nodes.append(grp);
    }
    root.append(nodes);
    box.append(root);
  }

  // ---- dialogs ------------------------------------------------------------------------

  function openDialog(id) {
    const d = $(id);
    if (!d.open) d.showModal();
  }

  async function copyText(text, statusEl, fallbackField) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {
      fallbackField.select();
      document.execCommand('copy');
    }
    statusEl.textContent = 'Copied.';
    setTimeout(() => { statusEl.textContent = ''; }, 2000);
  }

  function showError(p, text) {
    p.textContent = text;
    p.hidden = !text;
  }

  function openInvite() {
    $('invite-form').reset();
    $('invite-result').hidden = true;
    $('invite-qr').removeAttribute('src');
    showError($('invite-error'), '');
    membership.prepareInvite();
    openDialog('invite-dialog');
    $('invite-public-id').focus();
  }

  async function submitInvite(e) {
    e.preventDefault();
    const gid = state.selected;
    if (!gid) return;
    const pub = $('invite-public-id').value.trim();
    showError($('invite-error'), '');
    $('invite-submit').disabled = true;
    $('invite-busy').hidden = false;
    try {
      const res = await api('POST', '/groups/' + enc(gid) + '/invites', { public_id: pub, expires_in_s: membership.inviteExpiry() });
      $('invite-code').value = res.code;
      $('invite-qr').src = qrURL(res.code);
      $('invite-result').hidden = false;
    } catch (err) {
      showError($('invite-error'), 'Could not create the invite: ' + errorText(err));
    } finally {
      $('invite-busy').hidden = true;
      membership.prepareInvite();
    }
  }

  function openJoin() {
    if (!$('join-submit').disabled) {
      $('join-form').reset();
      showError($('join-error'), '');
    }
    openDialog('join-dialog');
    $('join-code').focus();
  }

  async function submitJoin(e) {
    e.preventDefault();
    const code = $('join-code').value.trim();
    if (!code) return;
    showError($('join-error'), '');
    $('join-submit').disabled = true;
    $('join-code').readOnly = true;
    $('join-progress').hidden = false;
    try {
      const g = await api('POST', '/join', { code });
      $('join-dialog').close();
      await refreshGroups();
      selectGroup(g.group_id);
      refreshStatus();
    } catch (err) {
      showError($('join-error'), 'Could not join: ' + errorText(err));
    } finally {
      $('join-progress').hidden = true;
      $('join-submit').disabled = false;
      $('join-code').readOnly = false;
    }
  }

  function openIdentity() {
    const s = state.status;
    $('my-name').textContent = s ? s.name || '(no name)' : '';
    $('my-public-id').value = s ? s.public_id : '';
    $('my-fingerprint').textContent = s ? s.fingerprint : '';
    if (s && s.public_id) $('my-qr').src = qrURL(s.public_id);
    openDialog('identity-dialog');
  }

  async function createGroup(e) {
    e.preventDefault();
    const input = $('new-group-name');
    const name = input.value.trim();
    showError($('create-group-error'), '');
    if (!name) return;
    try {
      const g = await api('POST', '/groups', { name });
      input.value = '';
      await refreshGroups();
      selectGroup(g.group_id);
      refreshStatus();
    } catch (err) {
      showError($('create-group-error'), 'Could not create the group: ' + errorText(err));
    }
  }

  async function exportTranscript() {
    const gid = state.selected;
    if (!gid) return;
    showError($('export-error'), '');
    try {
      // fetch, not a link: a link would have to carry the token in its URL.
      const res = await fetch(API + '/groups/' + enc(gid) + '/transcript', {
        headers: { Authorization: 'Bearer ' + state.token },
        cache: 'no-store',
      });
      if (!res.ok) {
        let msg = res.status + ' ' + res.statusText;
        try { msg = (await res.json()).error || msg; } catch (err) { /* keep the status */ }
        throw new APIError(msg, res.status);
      }
      const blob = await res.blob();
      const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : 'demes-transcript.json';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      showError($('export-error'), 'Could not export the transcript: ' + errorText(err));
    }
  }

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
      setPill('could not ' + (stop ? 'stop' : 'start') + ' the node: ' + err.message, 'bad');
    } finally {
      b.disabled = false;
    }
  }

  // ---- wiring ---------------------------------------------------------------------

  function wire() {
    $('compose-form').addEventListener('submit', (e) => {
      e.preventDefault();
      sendCompose();
    });
    $('compose').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        sendCompose();
      }
    });
    $('create-group-form').addEventListener('submit', createGroup);
    $('join-button').addEventListener('click', openJoin);
    $('join-form').addEventListener('submit', submitJoin);
    $('invite-button').addEventListener('click', openInvite);
    $('invite-form').addEventListener('submit', submitInvite);
    $('invite-copy').addEventListener('click', () => copyText($('invite-code').value, $('invite-copied'), $('invite-code')));
    $('identity-button').addEventListener('click', openIdentity);
    $('my-id-copy').addEventListener('click', () => copyText($('my-public-id').value, $('my-id-copied'), $('my-public-id')));
    $('export-button').addEventListener('click', exportTranscript);
    $('load-older').addEventListener('click', loadOlder);
    $('demo-toggle').addEventListener('click', toggleNode);
    for (const b of document.querySelectorAll('[data-close]')) {
      b.addEventListener('click', () => $(b.dataset.close).close());
    }
  }

  function main() {
    membership = window.demesMembership({
      $, el, api, enc, errorText, showError, openDialog, currentGroupStatus, shortID, myID, badge,
      stopped: () => state.stopped,
      // After a membership change: the lists, then the invites.
      onChange: () => { refreshStatus(); refreshGroups(); },
    });
    readToken();
    wire();
    membership.wire();
    renderGroups();
    renderStatusViews();
    if (!state.token) {
      $('banner-token').hidden = false;
      renderNodeState();
      return;
    }
    connectEvents();
    refreshAll();
    setInterval(refreshStatus, STATUS_POLL_MS);
  }

  main();
})();
