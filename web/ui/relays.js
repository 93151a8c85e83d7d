// DeMeS browser UI: the group's relays, in the group settings. A relay is
// a machine everyone can reach that passes traffic between members who
// cannot reach each other directly (behind home routers); every member's
// node that runs libp2p holds a slot on each relay the settings list, and
// invites carry them. Everyone sees the list; admins change it.

import { $, el, showError } from './dom.js';
import { currentGroupStatus } from './state.js';
import { api, enc } from './api.js';
import { plain } from './errors.js';

// relayLabel shortens a relay's address for the list: its first multiaddr
// without the peer id, and the peer id's end; the whole address is the
// title.
function relayLabel(addr) {
  const first = addr.split(',')[0];
  const i = first.lastIndexOf('/p2p/');
  if (i < 0) return first;
  const id = first.slice(i + 5);
  return first.slice(0, i) + ' (…' + id.slice(-8) + ')';
}

// renderRelays shows the group's relays, and to admins the field that
// changes them. The field follows the list until edited, as the rename
// field does.
export function renderRelays() {
  const g = currentGroupStatus();
  if (!g) return;
  const relays = (g.settings && g.settings.relays) || [];
  const list = $('relay-list');
  const items = relays.map((r) => {
    const li = el('li', 'relay', relayLabel(r));
    li.title = r;
    return li;
  });
  const key = relays.join('\n');
  if (list.dataset.key !== key) {
    list.dataset.key = key;
    list.replaceChildren(...items);
  }
  $('relays-none').hidden = relays.length > 0;
  const form = $('relays-form');
  form.hidden = !g.admin;
  const input = $('relays-input');
  if (!input.dataset.edited && document.activeElement !== input && !form.dataset.busy) input.value = key;
}

// saveRelays replaces the group's relays with the field's lines. The
// other settings go along as the status shows them: a change sets them all.
async function saveRelays(e) {
  e.preventDefault();
  const g = currentGroupStatus();
  if (!g) return;
  const input = $('relays-input');
  const relays = input.value.split('\n').map((s) => s.trim()).filter((s) => s !== '');
  const form = $('relays-form');
  form.dataset.busy = 'true';
  $('relays-submit').disabled = true;
  showError($('relays-error'), '');
  const s = g.settings || {};
  try {
    await api('PUT', '/groups/' + enc(g.group_id) + '/settings', {
      members_invite: !!s.members_invite,
      msgs_per_minute: s.msgs_per_minute || 0,
      bytes_per_day: s.bytes_per_day || 0,
      relays,
    });
    delete input.dataset.edited;
  } catch (err) {
    showError($('relays-error'), 'Could not change the relays. ' + plain(err, 'settings'));
  } finally {
    delete form.dataset.busy;
    $('relays-submit').disabled = false;
  }
}

export function wireRelays(after) {
  $('relays-form').addEventListener('submit', async (e) => {
    await saveRelays(e);
    after();
  });
  $('relays-input').addEventListener('input', (e) => { e.target.dataset.edited = 'true'; });
}
