// DeMeS browser UI: attachments. The attach button in the compose form
// uploads a file with its progress; a file message shows the file's name
// and size as a download link, and an image as a thumbnail.
//
// A download is a plain link to the node's file route with the token in
// the query (a link and an <img> cannot set headers; GET only, and the
// node never logs queries). The node serves a file with a sandbox policy
// and as an attachment, except the image types it shows inline.

import { API, enc, authorization, ensureSession } from './api.js';
import { state } from './state.js';
import { $, el, later } from './dom.js';
import { upsertMessage, loadMessages, PAGE } from './messages.js';
import { renderMessages } from './chat.js';
import { messagesChanged } from './groups.js';

// IMAGES are the types the node serves inline, shown as thumbnails.
const IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

// fileURL is where the file of message id of group gid downloads.
export function fileURL(gid, id) {
  return API + '/groups/' + enc(gid) + '/files/' + enc(id) + '?session=' + enc(state.session);
}

// fmtSize says a size the way people read it.
export function fmtSize(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + ' MB';
  if (n >= 1 << 10) return Math.round(n / (1 << 10)) + ' KB';
  return n + (n === 1 ? ' byte' : ' bytes');
}

// ARRIVAL_POLL_MS is how often the page asks the node how far a file it
// fetches has come, while one shows as arriving in the open group.
const ARRIVAL_POLL_MS = 2000;

// arrived is how much of a file the node holds, in percent of its size (the
// encrypted blob is a little larger, so it stops at 99 until it is ready).
function arrived(a) {
  return a.size > 0 ? Math.min(99, Math.floor(100 * (a.received || 0) / a.size)) : 0;
}

// attachmentSig is what of a message's attachment its rendering shows.
export function attachmentSig(m) {
  const a = m.attachment;
  // The session is in the links: a new one (the node restarted) draws
  // them again.
  return a ? [a.name, a.size, a.ready, a.ready ? state.session : arrived(a), !!a.skipped].join('/') : '';
}

// attachmentOf builds what a file message shows: a thumbnail for an image
// this node holds, and a link with the name and the size; while the node
// fetches the file, the name, the size and "arriving".
export function attachmentOf(m) {
  const a = m.attachment;
  const box = el('div', 'msg-text msg-file');
  const label = a.name + ' (' + fmtSize(a.size) + ')';
  if (!a.ready && a.skipped) {
    // The node did not fetch it by itself: its sender sent more files
    // today than this node takes unasked. Asking for it fetches it.
    box.append(el('span', 'msg-file-name', label));
    box.append(el('span', 'muted msg-file-wait', ' not fetched: its sender sent many files today. '));
    const get = el('button', 'button-small msg-file-get', 'Get it');
    get.type = 'button';
    get.setAttribute('aria-label', 'Get ' + label);
    get.addEventListener('click', async () => {
      get.disabled = true;
      try { await fetch(fileURL(m.group_id, m.id), { cache: 'no-store' }); } catch (e) { /* the listing says how it goes */ }
      loadMessages(m.group_id, PAGE);
    });
    box.append(get);
    return box;
  }
  if (!a.ready) {
    box.append(el('span', 'msg-file-name', label));
    box.append(el('span', 'muted msg-file-wait', ' arriving… ' + arrived(a) + '%'));
    return box;
  }
  const url = fileURL(m.group_id, m.id);
  if (IMAGES.has(a.type)) {
    const link = document.createElement('a');
    link.href = url;
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.className = 'msg-thumb-link';
    const img = document.createElement('img');
    img.className = 'msg-thumb';
    img.src = url;
    img.alt = a.name;
    img.loading = 'lazy';
    link.append(img);
    box.append(link);
  }
  const dl = el('a', 'msg-file-link', label);
  dl.href = url;
  dl.download = a.name;
  dl.setAttribute('aria-label', 'Download ' + label);
  box.append(dl);
  return box;
}

// upload sends file to group gid with XMLHttpRequest, whose upload
// progress fetch does not report, and shows the progress under the form.
async function upload(gid, file) {
  const bar = $('upload-progress');
  const status = $('upload-status');
  const err = $('upload-error');
  err.hidden = true;
  bar.value = 0;
  bar.hidden = false;
  status.hidden = false;
  status.textContent = 'Sending ' + file.name + '…';
  $('attach-button').disabled = true;
  try {
    await ensureSession();
  } catch (e) {
    bar.hidden = true;
    status.hidden = true;
    $('attach-button').disabled = false;
    err.textContent = 'Could not send ' + file.name + ': ' + e.message + '.';
    err.hidden = false;
    return;
  }
  const xhr = new XMLHttpRequest();
  const q = '?name=' + enc(file.name) + '&timeout_ms=1000' + (file.type ? '&type=' + enc(file.type) : '');
  xhr.open('POST', API + '/groups/' + enc(gid) + '/files' + q);
  xhr.setRequestHeader('Authorization', authorization());
  xhr.setRequestHeader('Content-Type', 'application/octet-stream');
  xhr.upload.addEventListener('progress', (e) => {
    if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total);
  });
  const done = (msg) => {
    bar.hidden = true;
    status.hidden = true;
    $('attach-button').disabled = false;
    if (msg) {
      err.textContent = msg;
      err.hidden = false;
    }
  };
  xhr.addEventListener('load', () => {
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (xhr.status >= 200 && xhr.status < 300 && data) {
      if (!data.group_id) data.group_id = gid;
      upsertMessage(data);
      if (gid === state.selected) renderMessages(true);
      messagesChanged(gid, {});
      done('');
      return;
    }
    const why = (data && data.error) || ('the node answered ' + xhr.status);
    done('Could not send ' + file.name + ': ' + why + (data && data.hint ? '. ' + data.hint.charAt(0).toUpperCase() + data.hint.slice(1) + '.' : '.'));
  });
  xhr.addEventListener('error', () => done('Could not send ' + file.name + ': cannot reach your node.'));
  xhr.send(file);
}

// watchArrivals asks the node again, in a while, how far the files it
// fetches for the open group gid have come, while msgs (what the page
// shows) hold one; the node's "file" event shows a link as soon as its
// file is here.
export function watchArrivals(gid, msgs) {
  if (!msgs.some((m) => m.attachment && !m.attachment.ready && !m.attachment.skipped)) return;
  later('arrivals', () => { if (state.selected === gid) loadMessages(gid, PAGE); }, ARRIVAL_POLL_MS);
}

// keepReady keeps an attachment ready once it was: an event the node sent
// before it held the file must not take the link away.
export function keepReady(old, m) {
  if (old && old.attachment && old.attachment.ready && m.attachment && !m.attachment.ready) {
    return Object.assign({}, m, { attachment: old.attachment });
  }
  return m;
}

export function wireFiles() {
  $('attach-button').addEventListener('click', () => $('attach-input').click());
  $('attach-input').addEventListener('change', () => {
    const input = $('attach-input');
    const file = input.files && input.files[0];
    input.value = '';
    if (file && state.selected) upload(state.selected, file);
  });
}
