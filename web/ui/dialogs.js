// DeMeS browser UI: the dialogs. Inviting someone, joining with a code,
// showing this node's identity, creating a group, and saving a transcript
// (after saying that it holds the conversation in plain text).

import { $, showError } from './dom.js';
import { state, currentGroupInfo } from './state.js';
import { api, enc, qrURL, download } from './api.js';
import { plain } from './errors.js';
import { displayName, selectGroup } from './groups.js';
import { refreshGroups, refreshStatus } from './sync.js';
import { membership } from './members.js';

export function openDialog(id) {
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

function openInvite() {
  $('invite-form').reset();
  $('invite-result').hidden = true;
  $('invite-queued').hidden = true;
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
    if (res && res.state === 'queued') {
      // The group cannot commit now: the node keeps the invite and adds
      // it when it can; the code exists only then.
      $('invite-result').hidden = true;
      $('invite-queued').textContent = 'The invite is queued: ' + queuedReason(res.message) +
        ' Your node adds it to the group as soon as enough members are online. Then press “Create invite code” again ' +
        '(or “Get code” under Open invites) to get the code; nobody can join with it before.';
      $('invite-queued').hidden = false;
      membership.loadInvites();
      return;
    }
    $('invite-queued').hidden = true;
    $('invite-code').value = res.code;
    $('invite-qr').src = qrURL(res.code);
    $('invite-result').hidden = false;
    membership.loadInvites();
  } catch (err) {
    showError($('invite-error'), 'Could not create the invite. ' + plain(err, 'invite'));
  } finally {
    $('invite-busy').hidden = true;
    membership.prepareInvite();
  }
}

// queuedReason turns the node's "queued: the group cannot commit now (2 of
// 3 voters offline); run ..." into the reason alone, for a person.
function queuedReason(message) {
  const m = /cannot commit now \(([^)]*)\)/.exec(message || '');
  return m ? 'the group cannot add it now (' + m[1] + ').' : 'the group cannot add it now.';
}

// inviteAgain opens the invite dialog for a queued invite's invitee and
// asks for it again: the node answers its code once it has committed.
function inviteAgain(e) {
  openInvite();
  $('invite-public-id').value = e.detail;
  $('invite-form').requestSubmit();
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
  // Whitespace and line breaks creep in when a long code is copied from a
  // chat or an email; a code has none of its own.
  const code = $('join-code').value.replace(/\s+/g, '');
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
    showError($('join-error'), plain(err, 'join'));
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
    showError($('create-group-error'), 'Could not create the group. ' + plain(err, 'create'));
  }
}

// openExport asks before saving: a transcript is the conversation in
// plain text, outside the node's encrypted store.
function openExport() {
  const g = currentGroupInfo();
  if (!g) return;
  showError($('export-error'), '');
  $('export-group').textContent = displayName(g);
  openDialog('export-dialog');
  $('export-cancel').focus();
}

async function saveTranscript() {
  const gid = state.selected;
  $('export-dialog').close();
  if (!gid) return;
  try {
    const { blob, name } = await download('/groups/' + enc(gid) + '/transcript');
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name || 'demes-transcript.json';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    showError($('export-error'), 'Could not save the transcript. ' + plain(err, 'export'));
  }
}

export function wireDialogs() {
  $('create-group-form').addEventListener('submit', createGroup);
  $('join-button').addEventListener('click', openJoin);
  $('join-form').addEventListener('submit', submitJoin);
  $('invite-button').addEventListener('click', openInvite);
  $('invite-form').addEventListener('submit', submitInvite);
  document.addEventListener('demes:invite-again', inviteAgain);
  $('invite-copy').addEventListener('click', () => copyText($('invite-code').value, $('invite-copied'), $('invite-code')));
  $('identity-button').addEventListener('click', openIdentity);
  $('my-id-copy').addEventListener('click', () => copyText($('my-public-id').value, $('my-id-copied'), $('my-public-id')));
  $('export-button').addEventListener('click', openExport);
  $('export-cancel').addEventListener('click', () => $('export-dialog').close());
  $('export-save').addEventListener('click', saveTranscript);
  for (const b of document.querySelectorAll('[data-close]')) {
    b.addEventListener('click', () => $(b.dataset.close).close());
  }
}
