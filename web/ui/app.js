// DeMeS browser UI: the page's entry point. Plain JavaScript modules, no
// build step, no libraries; each file has one job:
//
//   dom.js        making elements, icons, timers; formatting
//   state.js      what the page knows, and lookups on it
//   api.js        requests to the local node
//   errors.js     errors in plain words
//   login.js      the access token: from the address or pasted
//   sync.js       the event stream, reloads, the node's state and banners
//   messages.js   loading and sending messages
//   chat.js       the open conversation and the send box
//   groups.js     the list of groups, with previews and unread counts
//   unread.js     unread counts that survive a reload
//   notify.js     the tab title, screen-reader announcements, notifications
//   receipts.js   delivered and read receipts, and marking a group read
//   memberlist.js the members of the open group
//   members.js    membership actions: admins, removal, leaving, invites, settings
//   network.js    "How this group runs": the network picture and raft facts
//   dialogs.js    invite, join, identity, new group, transcript
//   drawers.js    the phone and tablet layout
//
// The rules every file keeps are at the top of dom.js: text from the
// network only ever goes in as textContent, and nothing inline.

import { $, later } from './dom.js';
import { readToken, showLogin, wireLogin } from './login.js';
import { startSync, renderStatusViews, renderNodeState } from './sync.js';
import { renderGroups, seenNow } from './groups.js';
import { wireChat, renderCompose } from './chat.js';
import { wireFiles } from './files.js';
import { wireSearch } from './search.js';
import { loadOlder } from './messages.js';
import { wireDialogs } from './dialogs.js';
import { wireDrawers } from './drawers.js';
import { wireNotify } from './notify.js';
import { membership } from './members.js';
import { wireReceipts } from './receipts.js';

function main() {
  wireChat();
  wireFiles();
  wireSearch();
  wireDialogs();
  membership.wire();
  wireNotify();
  wireReceipts();
  wireDrawers(renderCompose);
  wireLogin(startSync);
  $('load-older').addEventListener('click', () => loadOlder());
  // Coming back to the tab counts as seeing the open group.
  document.addEventListener('visibilitychange', () => later('seen', seenNow, 50));
  window.addEventListener('focus', () => later('seen', seenNow, 50));

  renderGroups();
  renderStatusViews();
  if (!readToken()) {
    showLogin('This page needs your node’s access token.');
    renderNodeState();
    return;
  }
  startSync();
}

main();

