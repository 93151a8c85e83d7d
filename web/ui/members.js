// DeMeS browser UI: membership. Admins, removing a member, leaving, the
// open invites with their revocation, and the group's settings.
//
// The node checks the group's rules before it proposes anything, and every
// member checks them again; this file only avoids offering what the node
// would refuse (a Remove button to a member who is not an admin), explains
// why, and shows the node's reason when it refuses all the same.

import { $, el, showError } from './dom.js';
import { state, currentGroupStatus, shortID, myID, memberLabel } from './state.js';
import { api, enc } from './api.js';
import { plain } from './errors.js';
import { openDialog } from './dialogs.js';
import { badge } from './memberlist.js';
import { refreshStatus, refreshGroups } from './sync.js';
import { renderRelays, wireRelays } from './relays.js';

// onChange runs after a membership change: the lists, then the invites.
function onChange() {
  refreshStatus();
  refreshGroups();
}

export const membership = (function () {
  const local = {
    invites: [], // open invites of invitesGroup, as GET .../invites answered
    invitesGroup: null,
    invitesError: '',
    confirmRun: null, // what the confirm dialog's OK button does
  };

  function isLeft(g) {
    return !!g && g.role === 'left';
  }

  // ---- the confirm dialog ---------------------------------------------------
  //
  // A <dialog> of the page rather than window.confirm: it can say what is
  // about to happen, show progress while the group agrees, and keep the
  // node's reason in view when it refuses.

  function confirmThen(title, text, okLabel, failure, run) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    $('confirm-ok').disabled = false;
    $('confirm-busy').hidden = true;
    showError($('confirm-error'), '');
    local.confirmRun = async () => {
      $('confirm-ok').disabled = true;
      $('confirm-busy').hidden = false;
      showError($('confirm-error'), '');
      try {
        await run();
        $('confirm-dialog').close();
      } catch (err) {
        showError($('confirm-error'), failure + '. ' + plain(err, 'member'));
      } finally {
        $('confirm-ok').disabled = false;
        $('confirm-busy').hidden = true;
        onChange();
      }
    };
    openDialog('confirm-dialog');
    $('confirm-cancel').focus();
  }

  // ---- members: badges and actions -------------------------------------------

  // memberBadges are the badges app.js adds after a member's name.
  function memberBadges(m) {
    return m.admin ? [badge('admin', 'badge-admin', 'May remove members, change who is an admin and the group’s settings')] : [];
  }

  // memberActions is the row of buttons under another member, for an admin
  // looking; null for everyone else, who may not use them.
  function memberActions(g, m) {
    if (!g.admin || m.self || isLeft(g)) return null;
    const row = el('div', 'member-actions');
    // With the fingerprint after a shared name: the admin removes the
    // member it means, not its namesake.
    const name = memberLabel(m);
    const toggle = el('button', 'button-small member-admin-toggle', m.admin ? 'Remove admin role' : 'Make admin');
    toggle.type = 'button';
    toggle.addEventListener('click', () => {
      const grant = !m.admin;
      confirmThen(
        grant ? 'Make ' + name + ' an admin?' : 'Remove ' + name + '’s admin role?',
        grant ? name + ' will be able to remove members, make others admins and change the group’s settings.'
          : name + ' will no longer be able to remove members, change roles or change the settings.',
        grant ? 'Make admin' : 'Remove admin role',
        grant ? 'Could not make ' + name + ' an admin' : 'Could not remove ' + name + '’s admin role',
        () => api('POST', '/groups/' + enc(g.group_id) + '/admins', { public_id: m.public_id, admin: grant }));
    });
    const remove = el('button', 'button-small button-danger member-remove', 'Remove');
    remove.type = 'button';
    remove.addEventListener('click', () => confirmThen(
      'Remove ' + name + ' from “' + g.name + '”?',
      'From the next message on, ' + name + ' receives nothing new from the group. They keep what they already have.',
      'Remove',
      'Could not remove ' + name,
      () => api('POST', '/groups/' + enc(g.group_id) + '/remove', { public_id: m.public_id })));
    row.append(toggle, remove);
    return row;
  }

  // ---- leaving ----------------------------------------------------------------

  function leave() {
    const g = currentGroupStatus();
    if (!g || isLeft(g)) return;
    confirmThen(
      'Leave “' + g.name + '”?',
      'You keep the messages you have, but receive nothing new. To come back you need a new invite.',
      'Leave the group',
      'Could not leave the group',
      () => api('POST', '/groups/' + enc(g.group_id) + '/leave', {}));
  }

  // ---- open invites -------------------------------------------------------------

  async function loadInvites() {
    const g = currentGroupStatus();
    if (!g || isLeft(g)) {
      local.invites = [];
      local.invitesGroup = null;
      renderInvites();
      return;
    }
    const gid = g.group_id;
    try {
      const list = await api('GET', '/groups/' + enc(gid) + '/invites');
      local.invites = list || [];
      local.invitesError = '';
    } catch (err) {
      local.invites = [];
      local.invitesError = 'Could not list the open invites. ' + plain(err, 'invites');
    }
    local.invitesGroup = gid;
    renderInvites();
  }

  // fmtExpiry says when an invite expires, relative to now.
  function fmtExpiry(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    if (isNaN(ms)) return 'expiry unknown';
    if (ms <= 0) return 'expired';
    const plural = (n, unit) => n + ' ' + unit + (n === 1 ? '' : 's');
    const min = Math.round(ms / 60000);
    if (min < 60) return 'expires in ' + plural(Math.max(1, min), 'minute');
    const h = Math.round(ms / 3600000);
    if (h < 48) return 'expires in ' + plural(h, 'hour');
    return 'expires in ' + plural(Math.round(ms / 86400000), 'day');
  }

  function renderInvites() {
    const g = currentGroupStatus();
    const section = $('invites-section');
    section.hidden = !g || isLeft(g);
    const list = $('pending-list');
    list.replaceChildren();
    showError($('pending-error'), local.invitesError);
    if (!g || local.invitesGroup !== g.group_id) {
      $('pending-empty').hidden = true;
      return;
    }
    for (const inv of local.invites) {
      const li = el('li', 'pending');
      li.dataset.invitee = inv.invitee;
      const body = el('div', 'pending-body');
      const who = el('div', 'pending-who', inv.fingerprint || shortID(inv.invitee));
      who.title = inv.invitee;
      const mine = inv.inviter === myID();
      const by = mine ? 'you' : inv.inviter_name || shortID(inv.inviter);
      const queued = inv.state === 'queued';
      const facts = el('div', 'pending-facts muted', (queued
        ? 'queued by you: the group adds it when enough members are online; no code yet'
        : 'invited by ' + by) + ' · ' + fmtExpiry(inv.expires_at));
      facts.title = 'Expires ' + new Date(inv.expires_at).toString();
      body.append(who, facts);
      li.append(body);
      if (queued) {
        li.classList.add('pending-queued');
        // Asking again answers the code once the invite is in the group.
        const b = el('button', 'button-small pending-code', 'Get code');
        b.type = 'button';
        b.addEventListener('click', () => document.dispatchEvent(new CustomEvent('demes:invite-again', { detail: inv.invitee })));
        li.append(b);
      }
      if (g.admin || mine) {
        const b = el('button', 'button-small button-danger pending-revoke', 'Revoke');
        b.type = 'button';
        b.addEventListener('click', () => confirmThen(
          'Revoke this invite?',
          'The invite for ' + (inv.fingerprint || shortID(inv.invitee)) + ' stops working: nobody can join with its code.',
          'Revoke',
          'Could not revoke the invite',
          () => api('POST', '/groups/' + enc(g.group_id) + '/invites/revoke', { invite: inv.invitee })));
        li.append(b);
      }
      list.append(li);
    }
    $('pending-empty').hidden = local.invites.length > 0 || !!local.invitesError;
  }

  // ---- settings -------------------------------------------------------------------

  function renderSettings() {
    const g = currentGroupStatus();
    $('settings-section').hidden = !g || isLeft(g);
    if (!g) return;
    const box = $('setting-members-invite');
    if (!box.dataset.busy) box.checked = !!(g.settings && g.settings.members_invite);
    box.disabled = !g.admin || !!box.dataset.busy;
    $('settings-note').textContent = g.admin
      ? 'When this is off, only admins may invite.'
      : 'Only admins change the group’s settings.';
    // Admins rename the group; the field follows the name until edited
    // (a refresh must not wipe out what the person typed, focused or not).
    const form = $('rename-form');
    form.hidden = !g.admin;
    const input = $('rename-name');
    if (!input.dataset.edited && document.activeElement !== input && !form.dataset.busy) input.value = g.name || '';
    // Admins add keepers; anyone may point the device at a member when
    // the group has no host (after a long absence, everyone may have moved).
    $('keeper-form').hidden = !g.admin;
    $('reconnect-form').hidden = !!g.host && !$('reconnect-form').dataset.busy;
    renderRelays();
  }

  // submitTarget posts a keeper or reconnect form's target and shows what
  // came of it.
  async function submitTarget(e, what) {
    e.preventDefault();
    const g = currentGroupStatus();
    const input = $(what + '-target');
    const target = input.value.trim();
    if (!g || !target) return;
    const form = $(what + '-form');
    const result = $(what + '-result');
    form.dataset.busy = 'true';
    $(what + '-submit').disabled = true;
    result.hidden = true;
    showError($('settings-error'), '');
    try {
      if (what === 'keeper') {
        const id = $('keeper-id').value.trim();
        const r = await api('POST', '/groups/' + enc(g.group_id) + '/keepers', id ? { target, id } : { target });
        result.textContent = r.offered
          ? 'Keeper added: it joins the group by itself.'
          : 'Keeper invited. Its operator joins with this code: ' + r.code;
      } else {
        const r = await api('POST', '/groups/' + enc(g.group_id) + '/reconnect', { target });
        result.textContent = r.after > r.before
          ? 'Caught up: ' + (r.after - r.before) + ' entries of the group’s history.'
          : 'In step with that member: it knows where your device is now.';
      }
      result.hidden = false;
      input.value = '';
      if (what === 'keeper') $('keeper-id').value = '';
    } catch (err) {
      showError($('settings-error'), (what === 'keeper' ? 'Could not add the keeper. ' : 'Could not reconnect. ') + plain(err, 'settings'));
    } finally {
      delete form.dataset.busy;
      $(what + '-submit').disabled = false;
      onChange();
    }
  }

  async function rename(e) {
    e.preventDefault();
    const g = currentGroupStatus();
    const name = $('rename-name').value.trim();
    if (!g || !name || name === g.name) return;
    const form = $('rename-form');
    form.dataset.busy = 'true';
    $('rename-submit').disabled = true;
    showError($('settings-error'), '');
    try {
      await api('POST', '/groups/' + enc(g.group_id) + '/rename', { name });
      delete $('rename-name').dataset.edited;
    } catch (err) {
      showError($('settings-error'), 'Could not rename the group. ' + plain(err, 'settings'));
    } finally {
      delete form.dataset.busy;
      $('rename-submit').disabled = false;
      onChange();
    }
  }

  async function changeSettings() {
    const g = currentGroupStatus();
    const box = $('setting-members-invite');
    if (!g) return;
    const want = box.checked;
    box.dataset.busy = 'true';
    box.disabled = true;
    showError($('settings-error'), '');
    try {
      // PUT replaces the settings: send the quotas in force with the
      // switch, or they would fall back to the defaults. Relays left out
      // keep the group's.
      const s = g.settings || {};
      await api('PUT', '/groups/' + enc(g.group_id) + '/settings', {
        members_invite: want,
        msgs_per_minute: s.msgs_per_minute || 0,
        bytes_per_day: s.bytes_per_day || 0,
      });
    } catch (err) {
      box.checked = !want;
      showError($('settings-error'), 'Could not change the setting. ' + plain(err, 'settings'));
    } finally {
      delete box.dataset.busy;
      onChange();
    }
  }

  // ---- the invite dialog -----------------------------------------------------------

  // prepareInvite shows why this node may not invite, and disables the form,
  // when the group's rules do not let it.
  function prepareInvite() {
    const g = currentGroupStatus();
    const allowed = !!g && g.can_invite !== false && !isLeft(g);
    $('invite-not-allowed').hidden = allowed;
    for (const id of ['invite-public-id', 'invite-expires', 'invite-submit']) $(id).disabled = !allowed;
  }

  function inviteExpiry() {
    return Number($('invite-expires').value) || 0;
  }

  // ---- wiring ------------------------------------------------------------------------

  function render() {
    const g = currentGroupStatus();
    $('banner-left').hidden = !isLeft(g);
    $('leave-button').disabled = !g || isLeft(g) || state.stopped || state.connLost;
    renderInvites();
    renderSettings();
    if ($('invite-dialog').open) prepareInvite();
  }

  function wire() {
    $('leave-button').addEventListener('click', leave);
    $('confirm-ok').addEventListener('click', () => { if (local.confirmRun) local.confirmRun(); });
    $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
    $('setting-members-invite').addEventListener('change', changeSettings);
    $('rename-form').addEventListener('submit', rename);
    $('rename-name').addEventListener('input', (e) => { e.target.dataset.edited = 'true'; });
    $('keeper-form').addEventListener('submit', (e) => submitTarget(e, 'keeper'));
    $('reconnect-form').addEventListener('submit', (e) => submitTarget(e, 'reconnect'));
    wireRelays(onChange);
  }

  return { memberBadges, memberActions, loadInvites, render, prepareInvite, inviteExpiry, isLeft, wire };
})();
