// Re-forming: a group halted after a fork goes on in a successor group
// without the member that forked it (docs/PROTOCOL.md, "Re-forming"). The
// fork banner offers the one action the node takes for it: join the
// successor another member offered, whose history matches this node's, or
// start one and invite the others. A successor's own banner says which
// group it continues.

import { $, showError } from './dom.js';
import { state, memberLabel } from './state.js';
import { api, enc } from './api.js';
import { plain } from './errors.js';
import { selectGroup } from './groups.js';
import { refreshGroups, refreshStatus } from './sync.js';

// reformLabel is what the fork banner's button does for the halted group
// gs, in words; '' when there is nothing to do.
function reformLabel(gs) {
  const succ = gs.successors || [];
  const mine = succ.find(s => s.member);
  const open = succ.find(s => !s.member && !s.problem);
  if (open && (!mine || open.group_id < mine.group_id)) {
    return 'Join the group ' + (open.continues.by_name || 'a member') + ' continues it in, without ' + (open.continues.without_name || 'one member');
  }
  if (mine) return 'Open the group that continues it';
  const f = gs.fork;
  const host = f.host && (!state.status || f.host !== state.status.public_id) ? f.host : '';
  const who = (gs.members || []).find(m => m.public_id === (host || f.peer));
  // With the fingerprint after a shared name, as the member list shows it.
  return 'Continue without ' + (who ? (who.name ? memberLabel(who) : who.fingerprint) : 'the member that forked it');
}

// refused words the successors offered to this node that it will not join.
function refused(gs) {
  return (gs.successors || []).filter(s => s.problem).map(s =>
    'Not joined: the group ' + (s.continues.by_name || 'a member') + ' started (' + s.problem + ').').join(' ');
}

// renderReform shows the fork banner's action and a successor's note, for
// the open group's status gs.
export function renderReform(gs) {
  const halted = !!(gs && gs.fork);
  $('reform-button').hidden = !halted || state.stopped || state.connLost;
  if (halted) {
    const label = reformLabel(gs);
    if ($('reform-button').textContent !== label) $('reform-button').textContent = label;
  }
  const why = halted ? refused(gs) : '';
  $('reform-refused').hidden = !why;
  $('reform-refused').textContent = why;
  $('banner-continues').hidden = !(gs && gs.continues);
  $('banner-continues-text').textContent = gs && gs.continues ? gs.continues.message : '';
}

async function reform() {
  const gid = state.selected;
  if (!gid) return;
  const btn = $('reform-button');
  btn.disabled = true;
  showError($('reform-error'), '');
  try {
    const r = await api('POST', '/groups/' + enc(gid) + '/reform', {});
    await refreshGroups();
    selectGroup(r.group_id);
    refreshStatus();
  } catch (err) {
    showError($('reform-error'), 'Could not continue the group. ' + plain(err, 'reform'));
  } finally {
    btn.disabled = false;
  }
}

export function wireReform() {
  $('reform-button').addEventListener('click', reform);
}
