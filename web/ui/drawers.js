// DeMeS browser UI: the layout on phones and tablets.
//
// Wide screens show three columns: groups, the conversation, members. On a
// tablet the members slide in from the right when asked for; on a phone the
// groups slide in from the left too, so that the conversation and its send
// box fill the screen. An open drawer holds the focus (the rest of the page
// is inert) until it is closed: with its Close button, Escape, a tap beside
// it, or by picking a group.
//
// The widths here and in style.css are the same: 1050 and 680 px.

import { $ } from './dom.js';

const wide = window.matchMedia('(min-width: 1051px)');
const phone = window.matchMedia('(max-width: 680px)');
const coarse = window.matchMedia('(pointer: coarse)');

// isTouch reports whether the main pointer is a finger: then Enter in the
// send box starts a new line, and controls are at least 44 px.
export function isTouch() {
  return coarse.matches;
}

const drawers = { 'groups-panel': 'groups-toggle', 'side-panel': 'members-toggle' };
// The parts of the page made inert while a drawer is open.
const outside = ['topbar', 'banner-stopped', 'banner-conn', 'groups-panel', 'chat-panel', 'side-panel'];

let opener = null; // the button that opened the drawer, for the focus after

function isDrawer(id) {
  return id === 'groups-panel' ? phone.matches : !wide.matches;
}

export function openDrawer(id) {
  if (!isDrawer(id)) return;
  closeDrawers(false);
  const panel = $(id);
  panel.classList.add('open');
  $(drawers[id]).setAttribute('aria-expanded', 'true');
  $('drawer-backdrop').hidden = false;
  for (const other of outside) if (other !== id) $(other).inert = true;
  opener = $(drawers[id]);
  const close = panel.querySelector('[data-drawer-close]');
  if (close) close.focus();
}

// closeDrawers closes any open drawer and gives the focus back to the
// button that opened it (unless refocus is false).
export function closeDrawers(refocus = true) {
  let was = false;
  for (const [id, toggle] of Object.entries(drawers)) {
    if ($(id).classList.contains('open')) was = true;
    $(id).classList.remove('open');
    $(toggle).setAttribute('aria-expanded', 'false');
  }
  $('drawer-backdrop').hidden = true;
  for (const other of outside) $(other).inert = false;
  if (was && refocus && opener && opener.offsetParent !== null) opener.focus();
  opener = null;
}

function anyOpen() {
  return Object.keys(drawers).some((id) => $(id).classList.contains('open'));
}

// wireDrawers sets up the buttons; onLayout runs when the layout or the
// kind of pointer changes.
export function wireDrawers(onLayout) {
  for (const [id, toggle] of Object.entries(drawers)) {
    $(toggle).addEventListener('click', () => ($(id).classList.contains('open') ? closeDrawers() : openDrawer(id)));
  }
  for (const b of document.querySelectorAll('[data-drawer-close]')) b.addEventListener('click', () => closeDrawers());
  $('drawer-backdrop').addEventListener('click', () => closeDrawers());
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && anyOpen() && !document.querySelector('dialog[open]')) {
      e.preventDefault();
      closeDrawers();
    }
  });
  for (const mq of [wide, phone, coarse]) {
    mq.addEventListener('change', () => {
      // A panel that is a column again is no drawer to close; one that
      // is still a drawer stays open (a phone turned on its side).
      if (Object.keys(drawers).some((id) => $(id).classList.contains('open') && !isDrawer(id))) closeDrawers(false);
      onLayout();
    });
  }
}
