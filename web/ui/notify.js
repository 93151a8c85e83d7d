// DeMeS browser UI: telling the person about new messages. The tab title
// carries the unread count, a screen reader hears each new message once,
// and, when the person turned them on, the desktop shows a notification
// for messages that arrive while the tab is hidden.
//
// The browser asks for permission to notify only when the person presses
// "Turn on notifications", never on its own.

import { $, el } from './dom.js';
import { stored } from './state.js';
import { totalUnread } from './unread.js';

const PREF = 'demes-notify'; // "on" once the person turned them on here
const ANNOUNCED_KEEP = 5; // lines kept in the live region
const BODY_MAX = 160; // characters of a message in a notification

const supported = () => typeof window.Notification === 'function';

// renderTitle puts the unread count into the tab title: "(3) DeMeS".
export function renderTitle() {
  const n = totalUnread();
  const want = n > 0 ? '(' + n + ') DeMeS' : 'DeMeS';
  if (document.title !== want) document.title = want;
}

// announce has a screen reader say text once. The message list is not a
// live region (it is re-rendered as states change, which would repeat
// messages); this region only ever gains one line per new message.
export function announce(text) {
  const region = $('announcer');
  region.append(el('p', null, text));
  while (region.childElementCount > ANNOUNCED_KEEP) region.firstElementChild.remove();
}

function enabled() {
  return supported() && Notification.permission === 'granted' && stored('local', PREF) === 'on';
}

// newMessage tells the person about a message of someone else that just
// arrived in the group named groupName; open says whether that group is
// the one on screen. onClick shows the group.
export function newMessage(m, who, groupName, open, onClick) {
  announce(open ? who + ': ' + m.text : who + ' in ' + groupName + ': ' + m.text);
  if (!document.hidden || !enabled()) return;
  const body = m.text.length > BODY_MAX ? m.text.slice(0, BODY_MAX - 1) + '…' : m.text;
  try {
    // One notification per group: a newer one replaces the older.
    const n = new Notification(who + ' in ' + groupName, { body, tag: 'demes-' + m.group_id });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch (err) {
    // Some browsers only notify from a service worker; the title still counts.
  }
}

// renderNotifyButton shows what the notifications button would do now.
export function renderNotifyButton() {
  const b = $('notify-button');
  const note = $('notify-note');
  if (!supported()) {
    b.hidden = true;
    return;
  }
  b.hidden = false;
  const perm = Notification.permission;
  if (perm === 'denied') {
    b.textContent = 'Notifications blocked';
    b.disabled = true;
    note.textContent = 'This browser blocks notifications from this page. Allow them in its site settings to turn them on.';
  } else if (enabled()) {
    b.textContent = 'Turn off notifications';
    b.disabled = false;
    note.textContent = 'You get a notification for each message that arrives while this tab is hidden.';
  } else {
    b.textContent = 'Turn on notifications';
    b.disabled = false;
    note.textContent = '';
  }
}

// toggleNotify turns notifications on (asking the browser for permission
// the first time) or off.
async function toggleNotify() {
  if (enabled()) {
    stored('local', PREF, null);
  } else {
    // Asked each time the person turns them on: the browser answers at
    // once when it already has an answer, and prompts only once.
    const perm = await Notification.requestPermission();
    if (perm === 'granted') stored('local', PREF, 'on');
  }
  renderNotifyButton();
}

export function wireNotify() {
  $('notify-button').addEventListener('click', toggleNotify);
  renderNotifyButton();
}
