// DeMeS browser UI: the open conversation. Its messages, the box to write
// in, and the header and banners above them.
//
// A message of ours shows a clock while it is on its way and a check once
// it has its place in the group's order (raft's "committed"), which every
// member sees the same. A message that is not in that order yet (the group
// cannot order messages now: too many voters are offline) is "tentative":
// it reached the members online directly, and shows a clock, ours and
// others' alike, until it takes its place.

import { $, el, icon, fmtTime } from './dom.js';
import { state, myID, currentGroupStatus, currentGroupInfo } from './state.js';
import { sortedMessages, shownState, sendText, retry, loadOlder } from './messages.js';
import { displayName, authorName, nameShared, authorFingerprint, SHARED_NAME } from './groups.js';
import { membership } from './members.js';
import { isTouch } from './drawers.js';
import { actionSig, quoteOf, footerOf, setRerender, sendDraft, cancelDraft, renderDraft } from './actions.js';
import { receiptsOf, receiptSig, receiptWords, receiptLine } from './receipts.js';
import { attachmentOf, attachmentSig, watchArrivals } from './files.js';
import { renderReform, wireReform } from './reform.js';

// The sign and words of each delivery state, for our own messages.
const stateShown = {
  sending: ['clock', 'Sending'],
  tentative: ['clock', 'Not in the group’s order yet: it joins it, once, when enough of the group is online'],
  committed: ['check', 'In the group’s order: everyone sees it here'],
  failed: ['alert', 'Not sent'],
};

function fingerprintOf(id) {
  if (state.status && id === state.status.public_id) return state.status.fingerprint || '';
  const g = currentGroupStatus();
  const m = g && g.members.find((x) => x.public_id === id);
  if (m) return m.fingerprint || '';
  const k = state.known.get(id);
  return k ? k.fingerprint || '' : '';
}

function messageSignature(m) {
  if (m.event) return ['event', m.id, m.event.name, m.event.name_shared ? m.event.fingerprint : ''].join('\u0000');
  const mine = !!m.author && m.author === myID();
  const receipts = mine ? receiptSig(receiptsOf(m)) + (m.id === newestMine ? ':newest' : '') : '';
  return [shownState(m), m.index, m.text, authorName(m), nameShared(m) && authorFingerprint(m), m.error || '', m.delivered || 0, !!m.held, actionSig(m), receipts, attachmentSig(m)].join('\u0000');
}

// newestMine is the id of our newest message in the group's order, in the
// conversation being rendered: the one that shows who read it in words.
let newestMine = null;

// stateLabel says in words where a message is, for its sign's title and
// screen readers: for our tentative ones, how many members hold it.
function stateLabel(m, mine) {
  const shown = shownState(m);
  if (shown === 'tentative' && !mine) return 'Not in the group’s order yet: it reached you directly, and joins the order when enough of the group is online';
  if (shown === 'tentative' && m.held) return 'Held back: sending it now would be over your quota in this group; it goes out by itself, once, when the quota allows';
  if (shown === 'tentative' && m.others > 0) {
    return 'Not in the group’s order yet: delivered to ' + (m.delivered || 0) + ' of ' + m.others +
      (m.others === 1 ? ' member' : ' members') + '; it joins the order, once, when enough of the group is online';
  }
  return (stateShown[shown] || ['clock', m.state])[1];
}

function buildMessage(m) {
  const li = el('li', 'msg');
  const mine = !!m.author && m.author === myID();
  li.dataset.id = m.id;
  li.dataset.state = shownState(m);
  li.dataset.sig = messageSignature(m);
  if (mine) li.classList.add('mine');

  const meta = el('div', 'msg-meta');
  const author = el('span', 'msg-author', authorName(m));
  const fp = fingerprintOf(m.author);
  if (fp) author.title = 'Fingerprint ' + fp;
  meta.append(author);
  if (nameShared(m)) {
    // The whole fingerprint: its first groups alone are few enough bits
    // for an impostor to find a key that matches them.
    const mark = el('span', 'msg-fp', authorFingerprint(m) || m.author.slice(0, 12) + '…');
    mark.title = SHARED_NAME;
    meta.append(mark);
  }
  const t = el('time', 'msg-time', fmtTime(m.sent_at));
  t.dateTime = m.sent_at;
  t.title = new Date(m.sent_at).toString();
  meta.append(t);
  const receipts = mine ? receiptsOf(m) : null;
  if (mine || shownState(m) === 'tentative') {
    let [name] = stateShown[shownState(m)] || ['clock', m.state];
    let label = stateLabel(m, mine);
    if (receipts) {
      if (receipts.holds.length === receipts.readers.length) name = 'checks';
      label = label.replace(/\.?$/, '.') + ' ' + receiptWords(receipts);
    }
    const st = el('span', 'msg-state state-' + shownState(m));
    st.append(icon(name, label));
    meta.append(st);
  }
  if (m.edited) meta.append(el('span', 'msg-edited', 'edited'));
  li.append(meta);

  const quote = quoteOf(m);
  if (quote) li.append(quote);
  // The message text: textContent only, whatever it contains.
  if (m.deleted) li.append(el('div', 'msg-text msg-deleted', 'Message deleted'));
  else if (m.attachment) li.append(attachmentOf(m));
  else li.append(linkedText(m.text));
  li.append(footerOf(m, mine));
  const line = m.id === newestMine ? receiptLine(receipts) : '';
  if (line) li.append(el('div', 'msg-receipt', line));

  if (m.state === 'failed') {
    const row = el('div', 'msg-error');
    row.setAttribute('role', 'alert');
    row.append(el('span', null, 'Not sent. ' + (m.error || '')));
    const again = el('button', 'button-small', 'Send again');
    again.type = 'button';
    again.addEventListener('click', () => retry(m));
    row.append(again);
    li.append(row);
  }
  return li;
}

// renderMessages shows the open group's messages, rebuilding only those
// that changed. scrollToEnd scrolls to the newest; keepPlace keeps what the
// reader sees in place while older messages come in above (and newer ones
// below, if any arrived meanwhile): the first message in view stays where
// it was.
export function renderMessages(scrollToEnd, keepPlace) {
  const list = $('message-list');
  const gid = state.selected;
  const msgs = gid ? withEvents(gid, sortedMessages(gid)) : [];
  newestMine = null;
  for (const m of msgs) {
    if (!m.event && m.state === 'committed' && m.author && m.author === myID()) newestMine = m.id;
  }
  const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  const anchor = keepPlace ? firstInView(list) : null;
  const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;
  const existing = new Map();
  for (const li of Array.from(list.children)) existing.set(li.dataset.id, li);
  let prev = null;
  for (const m of msgs) {
    let li = existing.get(m.id);
    existing.delete(m.id);
    if (!li || li.dataset.sig !== messageSignature(m)) {
      const fresh = m.event ? buildEvent(m) : buildMessage(m);
      if (li) li.replaceWith(fresh);
      li = fresh;
    }
    const want = prev ? prev.nextSibling : list.firstChild;
    if (li !== want) list.insertBefore(li, want);
    prev = li;
  }
  for (const li of existing.values()) li.remove();
  $('messages-empty').hidden = !gid || msgs.some((m) => !m.event);
  if (gid) watchArrivals(gid, msgs);
  if (anchor && anchor.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - anchorTop;
  else if (scrollToEnd || nearEnd) list.scrollTop = list.scrollHeight;
}

// withEvents places the group's membership events ("Cara joined") among
// its messages, by log index: each before the first committed message
// after it, and those after the last one before the tentative messages.
// Only events from the oldest message loaded on are shown, so that a line
// never stands where older messages are still to load.
function withEvents(gid, msgs) {
  const evs = state.events.get(gid);
  if (!evs || evs.size === 0) return msgs;
  const committed = msgs.filter((m) => m.state === 'committed');
  const o = state.older.get(gid);
  const from = committed.length > 0 && o && o.more ? committed[0].index : 0;
  const lines = Array.from(evs.values()).filter((ev) => ev.index >= from)
    .sort((a, b) => a.index - b.index)
    .map((ev) => ({ event: ev, id: 'event-' + ev.kind + '-' + ev.index + '-' + ev.member, index: ev.index }));
  const out = [];
  let k = 0;
  for (const m of msgs) {
    if (m.state === 'committed') {
      while (k < lines.length && lines[k].index < m.index) out.push(lines[k++]);
    } else {
      while (k < lines.length) out.push(lines[k++]);
    }
    out.push(m);
  }
  while (k < lines.length) out.push(lines[k++]);
  return out;
}

// URL_RE finds web addresses in a message: http and https only, so that
// no other scheme (javascript:, data:, file:) ever becomes a link.
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

// linkedText is a message's text with its web addresses as links. The text
// goes in as text nodes and each address as an anchor's text and href, set
// as properties: nothing in a message is ever parsed as markup. A trailing
// full stop, comma or closing bracket is left out of the address, as people
// write them.
function linkedText(text) {
  const div = el('div', 'msg-text');
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0].replace(/[.,;:!?)\]]+$/, '');
    let href;
    try {
      href = new URL(url);
    } catch (e) {
      continue;
    }
    if (href.protocol !== 'http:' && href.protocol !== 'https:') continue;
    div.append(document.createTextNode(text.slice(last, match.index)));
    const a = document.createElement('a');
    a.href = href.href;
    a.textContent = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    div.append(a);
    last = match.index + url.length;
  }
  div.append(document.createTextNode(text.slice(last)));
  return div;
}

// eventWords says a membership event in words.
function eventWords(ev) {
  // By id, not by the words: a member may call itself "You" (the node
  // flags that name, and the fingerprint shows).
  const mine = ev.member === myID();
  let who = mine ? 'You' : (ev.name || shortName(ev.member));
  if (!mine && ev.name_shared && ev.fingerprint) who += ' (' + ev.fingerprint + ')';
  const keeper = ev.keeper ? ' (a keeper: it keeps the history and cannot read it)' : '';
  switch (ev.kind) {
    case 'created': return who + ' created the group';
    case 'joined': return who + ' joined' + keeper;
    case 'left': return who + ' left' + keeper;
    default: return who + ' ' + ev.kind;
  }
}

function shortName(id) {
  return id ? id.slice(0, 12) + '…' : 'someone';
}

// buildEvent builds the line of a membership event.
function buildEvent(m) {
  const li = el('li', 'msg-event muted');
  li.dataset.id = m.id;
  li.dataset.sig = messageSignature(m);
  li.append(el('span', null, eventWords(m.event)));
  return li;
}

// firstInView is the first message of list that shows, at least in part.
function firstInView(list) {
  const top = list.getBoundingClientRect().top;
  for (const li of list.children) {
    if (li.getBoundingClientRect().bottom > top) return li;
  }
  return null;
}

// OLDER_MARGIN is how close to the top of the list, in pixels, the reader
// scrolls before the older page is fetched: it arrives before they get there.
const OLDER_MARGIN = 200;

// nearTop loads the older page once the reader scrolled close to the top,
// or when the messages do not fill the list (nothing to scroll).
function nearTop() {
  const list = $('message-list');
  // A list out of view (a drawer over it) has no height: nothing to fill.
  if (list.clientHeight > 0 && (list.scrollTop < OLDER_MARGIN || list.scrollHeight <= list.clientHeight)) loadOlder();
}

export function renderOlder() {
  const o = state.selected && state.older.get(state.selected);
  $('load-older').hidden = !o || !o.more;
  if (o && o.more) requestAnimationFrame(nearTop);
  // Once the oldest readable message is in view, say why there is nothing
  // before it for a member who joined later.
  const gs = currentGroupStatus();
  $('joined-note').hidden = !(gs && gs.joined_at > 1 && (!o || !o.more));
}

// canSend reports whether the send box may be used now. A group halted
// after a fork takes nothing more (the node refuses it too).
function canSend() {
  const gs = currentGroupStatus();
  return !!state.selected && !state.stopped && !state.connLost && !membership.isLeft(gs) && !(gs && gs.fork);
}

export function renderCompose() {
  // A group this node left stays readable, and nothing more.
  const ok = canSend();
  $('compose').disabled = !ok;
  $('send-button').disabled = !ok;
  $('attach-button').disabled = !ok;
  $('invite-button').disabled = !ok;
  $('export-button').disabled = !state.selected || state.stopped || state.connLost;
  $('compose').placeholder = isTouch() ? 'Write a message' : 'Write a message. Enter sends, Shift+Enter starts a new line.';
}

export function renderChatHeader() {
  renderDraft();
  const g = currentGroupInfo();
  $('chat-title').textContent = g ? displayName(g) : 'No group selected';
  renderCompose();
}

export function renderQuorumBanner() {
  const gs = currentGroupStatus();
  const live = gs && !state.stopped && !state.connLost;
  // The node words the fork, censorship and keys alerts for a person; they are
  // text from this node, set with textContent like everything else.
  $('banner-fork').hidden = !(gs && gs.fork);
  $('banner-fork-text').textContent = gs && gs.fork ? gs.fork.message : '';
  renderReform(gs);
  $('banner-censor').hidden = !(live && gs.censorship && !gs.fork);
  $('banner-censor-text').textContent = gs && gs.censorship ? gs.censorship.message : '';
  // A node that lost its keys for the group (restored from a backup, or
  // its key store gone) says what it asked for and from where it reads
  // again: until then it cannot read what the members send.
  $('banner-keys').hidden = !(live && gs.keys && !gs.fork);
  $('banner-keys-text').textContent = gs && gs.keys ? gs.keys.message : '';
  // A copy put back from a backup votes for no new host until it has
  // caught up (docs/PROTOCOL.md): the member should know why, should the
  // group wait on it.
  $('banner-restored').hidden = !(live && gs.restored && !gs.fork);
  $('banner-restored-text').textContent = gs && gs.restored ? sentence(gs.restored) : '';
  $('banner-quorum').hidden = !(live && gs.has_quorum === false && !gs.fork);
  // The node says how many voters are offline, when it knows.
  const why = gs && gs.waiting ? sentence(gs.waiting) : QUORUM_DEFAULT;
  if ($('banner-quorum-text').textContent !== why) $('banner-quorum-text').textContent = why;
}

// sentence makes the node's words for status lines ("3 of 5 voters
// offline: ...") a sentence: a capital first letter and a full stop.
function sentence(words) {
  return words.charAt(0).toUpperCase() + words.slice(1) + '.';
}

const QUORUM_DEFAULT = 'Too few members are online to put messages in the group’s order: yours reach the members online now, and join the order when enough of the group is back.';

function sendCompose() {
  const box = $('compose');
  const gid = state.selected;
  const text = box.value;
  if (!canSend() || text.trim() === '') return;
  box.value = '';
  if (!sendDraft(gid, text, sendText)) sendText(gid, text);
}

export function wireChat() {
  setRerender(() => renderMessages(false));
  wireReform();
  $('draft-cancel').addEventListener('click', () => {
    cancelDraft();
    $('compose').focus();
  });
  // Older messages come as the reader scrolls up to them; the button above
  // the list does the same for a keyboard.
  $('message-list').addEventListener('scroll', () => {
    const o = state.selected && state.older.get(state.selected);
    if (o && o.more) nearTop();
  }, { passive: true });
  $('compose-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sendCompose();
  });
  // On a desktop keyboard Enter sends and Shift+Enter starts a new line.
  // A touch keyboard has no Shift+Enter, so there Enter starts a new line
  // and the Send button sends.
  $('compose').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !isTouch()) {
      e.preventDefault();
      sendCompose();
    }
  });
}

