// DeMeS browser UI: "How this group runs", a details panel for the curious.
// A picture of the members and the round-trip times between them, their
// places in line to host, and the raft facts (term, log entries, voters,
// learners, quorum) that the rest of the page keeps out of sight.

import { $, el, svg, fmtMs } from './dom.js';
import { state, currentGroupStatus, shortID, memberLabel } from './state.js';
import { prefRank } from './memberlist.js';

export function renderNetwork() {
  renderPicture();
  renderFacts();
}

function renderFacts() {
  const dl = $('group-raft');
  const g = currentGroupStatus();
  const rows = [];
  if (g) {
    const voters = g.members.filter((m) => m.voter);
    const learners = g.members.filter((m) => !m.voter);
    const host = g.members.find((m) => m.public_id === g.host);
    // Named with the fingerprint after a shared name (memberLabel).
    const names = (list) => list.map(memberLabel).join(', ') || 'none';
    rows.push(['Host (raft leader)', host ? memberLabel(host) : 'none: no quorum']);
    rows.push(['Quorum', Math.floor(voters.length / 2) + 1 + ' of ' + voters.length + ' voters' + (g.has_quorum ? ', reached' : ', not reached')]);
    rows.push(['Voters', names(voters)]);
    rows.push(['Learners', names(learners)]);
    rows.push(['Term', String(g.term)]);
    rows.push(['Log entries', String(g.committed)]);
    rows.push(['In your outbox', String(g.queued || 0)]);
    rows.push(['Your node’s role', g.role || '?']);
    const paths = pathsFact(g);
    if (paths) rows.push(['Paths to the others', paths]);
  }
  const reach = reachFact(state.status && state.status.reachability);
  if (reach) rows.push(['Your device from the internet', reach]);
  const items = [];
  for (const [k, v] of rows) items.push(el('dt', null, k), el('dd', null, v));
  dl.replaceChildren(...items);
}

// pathsFact says which members this node reaches directly and which only
// through a relay, or '' when the node does not say (it talks HTTP).
function pathsFact(g) {
  const direct = [];
  const relayed = [];
  for (const m of g.members) {
    if (m.self) continue;
    if (m.path === 'direct') direct.push(memberLabel(m));
    else if (m.path === 'relayed') relayed.push(memberLabel(m));
  }
  const parts = [];
  if (direct.length) parts.push('direct: ' + direct.join(', '));
  if (relayed.length) parts.push('through a relay: ' + relayed.join(', '));
  return parts.join('; ');
}

// reachFact says whether peers on the internet can open a connection to
// this device, as the node found out by asking peers to dial it back
// (AutoNAT), or '' when the node does not run libp2p.
export function reachFact(r) {
  if (!r) return '';
  const relays = (r.relays || []).length;
  const via = relays ? ' · others reach it through ' + (relays === 1 ? 'a relay' : relays + ' relays') : '';
  if (r.state === 'public') return 'reachable directly' + ((r.reachable || []).length ? ' at ' + r.reachable[0] : '') + via;
  if (r.state === 'private') return 'not reachable directly (behind a router or firewall)' + (via || ' · and no relay: members elsewhere cannot reach it; an admin can list a relay in the group’s settings');
  return 'not known yet: peers on the internet have not tried to reach it' + via;
}

// FP_LINE is how far the line of a fingerprint is from the name's.
const FP_LINE = 13;

// fpShown reports whether the picture shows m's fingerprint beside its
// name: the node flags the name as shared (see memberLabel).
function fpShown(m) {
  return !!(m.name && m.name_shared && m.fingerprint);
}

function renderPicture() {
  const box = $('network');
  box.replaceChildren();
  const g = currentGroupStatus();
  if (!g || g.members.length === 0) {
    box.append(el('p', 'muted', state.stopped ? 'Not while your node is stopped.' : 'No group selected.'));
    return;
  }
  const size = 320;
  const c = size / 2;
  const members = g.members.slice().sort((a, b) => String(a.public_id).localeCompare(String(b.public_id)));
  const n = members.length;
  const R = n === 1 ? 0 : 108;
  // Circles shrink when many members share the ring, so they do not overlap.
  const r = n < 3 ? 22 : Math.max(8, Math.min(22, 0.4 * 2 * R * Math.sin(Math.PI / n)));
  const pos = new Map();
  members.forEach((m, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    pos.set(m.public_id, { x: c + R * Math.cos(a), y: c + R * Math.sin(a) });
  });
  // The picture is as tall as what it shows: the ring, the circles and
  // the names (above the circles in the upper half, below in the lower),
  // a shared name with a line for its fingerprint (FP_LINE further out).
  let top = Infinity;
  let bottom = -Infinity;
  for (const m of members) {
    const p = pos.get(m.public_id);
    const above = p.y < c - 20;
    const extra = fpShown(m) ? FP_LINE : 0;
    top = Math.min(top, above ? p.y - r - 22 - extra : p.y - r - 4);
    bottom = Math.max(bottom, above ? p.y + r + 4 : p.y + r + 22 + extra);
  }
  const hostMember = members.find((m) => m.public_id === g.host);
  const root = svg('svg', {
    viewBox: [0, Math.floor(top), size, Math.ceil(bottom - top)].join(' '),
    class: 'network-svg',
    role: 'img',
    'aria-label': 'Network of ' + n + ' members; host: ' + (hostMember ? memberLabel(hostMember) : 'none'),
  });
  root.append(svg('title', {}, 'Members and their round-trip times'));

  const edges = svg('g', { class: 'edges' });
  const labels = svg('g', { class: 'edge-labels' });
  for (const e of g.edges || []) {
    const a = pos.get(e.a);
    const b = pos.get(e.b);
    if (!a || !b) continue;
    const touchesHost = e.a === g.host || e.b === g.host;
    edges.append(svg('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'edge' + (touchesHost ? ' edge-host' : '') }));
    // Not at the exact middle, so crossing diagonals keep their labels apart.
    const t = 0.42;
    labels.append(svg('text', { x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t, class: 'edge-label', 'text-anchor': 'middle', 'dominant-baseline': 'middle' }, fmtMs(e.rtt_ms) || '?'));
  }
  root.append(edges, labels);

  const nodes = svg('g', { class: 'nodes' });
  for (const m of members) {
    const p = pos.get(m.public_id);
    const rank = prefRank(g, m.public_id);
    let cls = 'node';
    if (m.public_id === g.host) cls += ' node-host';
    if (m.self) cls += ' node-self';
    if (!m.online && !m.self) cls += ' node-offline';
    if (!m.voter) cls += ' node-learner';
    const grp = svg('g', { class: cls, 'data-public-id': m.public_id });
    let role = '';
    if (m.public_id === g.host) role = ': host';
    else if (rank === 0) role = ': preferred host';
    else if (rank !== Infinity) role = ': backup ' + rank;
    else if (!m.voter) role = ': learner';
    grp.append(svg('title', {}, (m.name ? memberLabel(m) : m.public_id) + role + (m.self || m.online ? '' : ' (offline)')));
    grp.append(svg('circle', { cx: p.x, cy: p.y, r }));
    grp.append(svg('text', { x: p.x, y: p.y, class: 'node-rank', 'text-anchor': 'middle', 'dominant-baseline': 'central' }, rank === Infinity ? '·' : rank + 1));
    let name = m.name || shortID(m.public_id);
    if (name.length > 14) name = name.slice(0, 13) + '…';
    if (m.self) name += ' (you)';
    // Names go on the side away from the centre, where no line runs.
    const above = p.y < c - 20;
    grp.append(svg('text', { x: p.x, y: above ? p.y - r - 8 : p.y + r + 16, class: 'node-name', 'text-anchor': 'middle' }, name));
    if (fpShown(m)) {
      // The whole fingerprint, under the cut name: where two names look
      // alike, it says who is who (its first groups alone do not).
      grp.append(svg('text', { x: p.x, y: above ? p.y - r - 8 - FP_LINE : p.y + r + 16 + FP_LINE, class: 'node-fp', 'text-anchor': 'middle' }, m.fingerprint));
    }
    nodes.append(grp);
  }
  root.append(nodes);
  box.append(root);
}
