// DeMeS browser UI: what a person does with a message. Reply (quoting it
// above the message box), react with an emoji, and for their own messages
// edit (in the message box) and delete (after a confirmation). Each is a
// message of the group's log; a reaction, an edit or a delete shows on the
// message it changes, for everyone, once the group has it in its order.
//
// Message text, names and emoji are other people's words: textContent
// only, as everywhere.

import { $, el, showError } from './dom.js';
import { api, enc } from './api.js';
import { state, myID, groupMessages } from './state.js';
import { plain } from './errors.js';
import { authorLabel } from './groups.js';

// EMOJI are the reactions offered; a reaction of another member's DeMeS
// may be any short emoji, and shows as it is.
export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

// draft is what the message box is for besides a new message: a reply
// ({mode: 'reply'}) or an edit ({mode: 'edit'}) of the message id of
// group gid.
let draft = null;
// open is the message whose reaction picker ('react') or delete
// confirmation ('delete') shows, if any.
let open = { id: null, what: null };
// rerender redraws the messages; chat.js sets it (it imports this module).
let rerender = () => {};

export function setRerender(fn) { rerender = fn; }

// actionSig is what of a message's reply, reactions and actions shows: a
// message whose sig changed is built again.
export function actionSig(m) {
  const q = m.reply_to ? target(m) : null;
  return [m.reply_to || '', q ? (q.deleted ? '-' : q.text) : '', q ? who(q) : '', JSON.stringify(m.reactions || []),
    !!m.edited, !!m.deleted, open.id === m.id ? open.what : ''].join('\u0001');
}

function target(m) {
  return groupMessages(m.group_id).get(m.reply_to) || null;
}

// who names m's author on a line: with the fingerprint after a shared
// name (authorLabel), so that "Reply to bob" cannot be an impostor's bob.
function who(m) {
  if (m.author === myID()) return 'you';
  return m.author ? authorLabel(m) : 'someone';
}

// snippet is the start of a message's text, for a quote.
function snippet(text) {
  const t = String(text || '').replace(/\s+/g, ' ').trim();
  return t.length > 120 ? t.slice(0, 119) + '…' : t;
}

// quoteOf is the small quote of what m replies to, or null.
export function quoteOf(m) {
  if (!m.reply_to || m.deleted) return null;
  const q = target(m);
  const box = el('div', 'msg-quote');
  if (!q) {
    box.append(el('span', null, 'Reply to an earlier message'));
    return box;
  }
  box.append(el('span', 'msg-quote-author', 'Reply to ' + who(q) + ': '));
  box.append(el('span', null, q.deleted ? 'message deleted' : snippet(q.text)));
  return box;
}

// canChange reports whether m is in the group's order, so that it can be
// reacted to, edited or deleted (the node refuses others).
function canChange(m) {
  return m.state === 'committed' && !m.deleted && !m.local;
}

function smallButton(text, label, fn) {
  const b = el('button', 'button-small msg-action', text);
  b.type = 'button';
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', fn);
  return b;
}

// reactionChip shows one reaction r to m, with how many gave it. Pressing
// it takes back one's own reaction, or gives the same one. A reaction in
// words ("+1"), which an earlier DeMeS sent (r.legacy), can be taken back
// but not given again: the node sends only emoji. So someone else's is no
// button, and says why, rather than a button the node answers with an
// error.
function reactionChip(m, r) {
  const counted = r.emoji + ' ' + r.count + (r.count === 1 ? ' reaction' : ' reactions');
  const old = r.legacy ? ' in words, from an earlier DeMeS' : '';
  if (r.legacy && !r.mine) {
    const why = 'reactions are emoji now, so this one cannot be given again';
    const chip = el('span', 'reaction reaction-legacy', r.emoji + ' ' + r.count);
    chip.title = 'A reaction' + old + '; ' + why;
    chip.append(el('span', 'visually-hidden', (r.count === 1 ? ' reaction' : ' reactions') + old + ': ' + why));
    return chip;
  }
  const label = counted + old + (r.mine ? ', including yours: press to take yours back' : ': press to react with it too');
  const b = smallButton(r.emoji + ' ' + r.count, label, () => react(m, r.mine ? '' : r.emoji));
  b.classList.add('reaction');
  b.setAttribute('aria-pressed', r.mine ? 'true' : 'false');
  b.disabled = !canChange(m);
  return b;
}

// footerOf is what shows under m's text: its reactions, and the buttons to
// act on it.
export function footerOf(m, mine) {
  const out = el('div', 'msg-footer');
  if (m.deleted || m.local || m.state === 'failed') return out;
  if (m.reactions && m.reactions.length) {
    const row = el('div', 'msg-reactions');
    for (const r of m.reactions) row.append(reactionChip(m, r));
    out.append(row);
  }
  const acts = el('div', 'msg-actions');
  acts.append(smallButton('Reply', 'Reply to ' + who(m), () => startDraft('reply', m)));
  if (canChange(m)) {
    acts.append(smallButton('React', 'React to this message', () => toggle(m, 'react')));
    if (mine) {
      acts.append(smallButton('Edit', 'Edit your message', () => startDraft('edit', m)));
      acts.append(smallButton('Delete', 'Delete your message', () => toggle(m, 'delete')));
    }
  }
  out.append(acts);
  if (open.id === m.id && open.what === 'react') {
    const pick = el('div', 'msg-picker');
    pick.setAttribute('role', 'group');
    pick.setAttribute('aria-label', 'Choose a reaction');
    for (const e of EMOJI) pick.append(smallButton(e, 'React with ' + e, () => react(m, e)));
    out.append(pick);
  }
  if (open.id === m.id && open.what === 'delete') {
    const c = el('div', 'msg-confirm');
    c.setAttribute('role', 'group');
    c.setAttribute('aria-label', 'Delete this message?');
    c.append(el('span', null, 'Delete this message for everyone? The group keeps a signed record that you deleted it.'));
    const yes = smallButton('Delete', 'Yes, delete it', () => change(m, 'delete', {}));
    yes.classList.add('button-danger');
    c.append(yes, smallButton('Keep it', null, () => toggle(m, null)));
    out.append(c);
  }
  return out;
}

function toggle(m, what) {
  open = open.id === m.id && open.what === what ? { id: null, what: null } : { id: m.id, what };
  if (!what) open = { id: null, what: null };
  rerender();
  if (open.id) {
    const li = document.querySelector('#message-list li[data-id="' + CSS.escape(m.id) + '"]');
    const first = li && li.querySelector('.msg-picker button, .msg-confirm button');
    if (first) first.focus();
  }
}

function react(m, emoji) {
  open = { id: null, what: null };
  change(m, 'react', emoji ? { emoji } : { remove: true });
}

// change sends a reaction, an edit or a delete of m. Its effect shows when
// the node tells the page that m changed.
async function change(m, kind, body) {
  open = { id: null, what: null };
  showError($('change-error'), '');
  rerender();
  try {
    await api('POST', '/groups/' + enc(m.group_id) + '/messages/' + enc(m.id) + '/' + kind, Object.assign({ timeout_ms: 1000 }, body));
  } catch (err) {
    const what = { react: 'react', edit: 'edit the message', delete: 'delete the message' }[kind];
    showError($('change-error'), plain(err, what));
  }
}

// startDraft has the message box reply to m, or edit it.
function startDraft(mode, m) {
  draft = { mode, gid: m.group_id, id: m.id, name: who(m), text: m.text };
  const box = $('compose');
  if (mode === 'edit') box.value = m.text;
  renderDraft();
  box.focus();
}

export function cancelDraft() {
  if (draft && draft.mode === 'edit') $('compose').value = '';
  draft = null;
  renderDraft();
}

// renderDraft shows what the message box does, above it.
export function renderDraft() {
  if (draft && draft.gid !== state.selected) draft = null;
  $('draft-bar').hidden = !draft;
  if (!draft) return;
  $('draft-text').textContent = draft.mode === 'edit'
    ? 'Editing your message'
    : 'Replying to ' + draft.name + ': ' + snippet(draft.text);
}

// sendDraft sends text as the draft says, and reports whether there was a
// draft (else the text is a new message, which chat.js sends).
export function sendDraft(gid, text, sendText) {
  if (!draft || draft.gid !== gid) return false;
  const d = draft;
  draft = null;
  renderDraft();
  if (d.mode === 'reply') {
    sendText(gid, text, d.id);
  } else {
    const m = groupMessages(gid).get(d.id);
    if (m) change(m, 'edit', { text });
  }
  return true;
}
