// DeMeS browser UI: searching the open group's messages. The node reads
// the messages it can read, newest first (it keeps no index: an index would
// be plaintext on disk), and answers the matches; they show here as a list
// apart from the conversation, with who wrote each and when.

import { $, el, fmtTime } from './dom.js';
import { api, enc } from './api.js';
import { state } from './state.js';
import { authorLabel } from './groups.js';
import { plain } from './errors.js';

const LIMIT = 50;

async function search(e) {
  e.preventDefault();
  const gid = state.selected;
  const text = $('search-text').value.trim();
  if (!gid || !text) return;
  const list = $('search-list');
  const summary = $('search-summary');
  $('search-results').hidden = false;
  $('search-submit').disabled = true;
  summary.textContent = 'Searching…';
  list.replaceChildren();
  try {
    const found = await api('GET', '/groups/' + enc(gid) + '/search?q=' + encodeURIComponent(text) + '&limit=' + LIMIT);
    summary.textContent = found.length === 0 ? 'No message holds “' + text + '”.'
      : (found.length === 1 ? '1 message' : found.length + (found.length === LIMIT ? ' newest messages' : ' messages')) + ' with “' + text + '”, newest first.';
    for (const m of found) {
      const li = el('li', 'msg search-hit');
      const meta = el('div', 'msg-meta');
      meta.append(el('span', 'msg-author', authorLabel(m)));
      const t = el('time', 'msg-time', fmtTime(m.sent_at));
      t.dateTime = m.sent_at;
      meta.append(t);
      li.append(meta, el('div', 'msg-text', m.text));
      list.append(li);
    }
  } catch (err) {
    summary.textContent = 'Could not search. ' + plain(err, 'messages');
  } finally {
    $('search-submit').disabled = false;
  }
}

function close() {
  $('search-results').hidden = true;
  $('search-list').replaceChildren();
}

export function wireSearch() {
  $('search-form').addEventListener('submit', search);
  $('search-close').addEventListener('click', close);
}

// searchGroupChanged closes the results when another group opens.
export function searchGroupChanged() {
  close();
  $('search-text').value = '';
}
