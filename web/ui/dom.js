// DeMeS browser UI: building the page. Small helpers every other module
// uses to make elements, icons and timers, and to format times.
//
// The rules the whole UI keeps, because the page shows text written by
// other people:
//  - Text from the network (messages, names, ids, errors) goes into the page
//    with textContent only, never innerHTML or insertAdjacentHTML.
//  - No inline script or style: the server's Content-Security-Policy forbids
//    both, so styling is by class and SVG is built with createElementNS.
//  - Every file is an ES module: strict, with its own scope.

const SVG_NS = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

// el makes an element with a class and text; the text is always textContent.
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

// svg makes an SVG element with attributes and, optionally, text.
export function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// icon returns a small inline picture: "check" (in the group's order),
// "checks" (and delivered to every member), "clock" (on its way) or
// "alert" (not sent). label is what a screen reader
// says instead of the picture.
export function icon(name, label) {
  const root = svg('svg', { viewBox: '0 0 16 16', width: 16, height: 16, class: 'icon icon-' + name, role: 'img', 'aria-label': label });
  root.append(svg('title', {}, label));
  if (name === 'check') {
    root.append(svg('path', { d: 'M3 8.5l3.2 3.2L13 4.8', fill: 'none', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
  } else if (name === 'checks') {
    root.append(svg('path', { d: 'M1 8.5l3 3L10.5 4.8M7 10.4l1.1 1.1L15 4.8', fill: 'none', 'stroke-width': 1.8, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
  } else if (name === 'clock') {
    root.append(svg('circle', { cx: 8, cy: 8, r: 6, fill: 'none', 'stroke-width': 1.6 }));
    root.append(svg('path', { d: 'M8 4.5V8l2.4 1.6', fill: 'none', 'stroke-width': 1.6, 'stroke-linecap': 'round' }));
  } else {
    root.append(svg('circle', { cx: 8, cy: 8, r: 6.2, fill: 'none', 'stroke-width': 1.6 }));
    root.append(svg('path', { d: 'M8 4.6v4.2M8 11v.4', fill: 'none', 'stroke-width': 1.8, 'stroke-linecap': 'round' }));
  }
  return root;
}

// showError puts text into an error paragraph and shows it, or hides the
// paragraph when text is empty.
export function showError(p, text) {
  p.textContent = text;
  p.hidden = !text;
}

const timers = {};

// later runs fn once after ms, however often it is asked in between.
export function later(name, fn, ms) {
  if (timers[name]) return;
  timers[name] = setTimeout(() => {
    timers[name] = null;
    fn();
  }, ms);
}

// fmtTime is a message's time: the time of day today, the date before.
export function fmtTime(iso) {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return '';
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + ' ' + time;
}

// fmtMs is a round-trip time for people: "11 ms", "2.5 ms".
export function fmtMs(x) {
  if (!(x > 0)) return '';
  if (x < 0.1) return '< 0.1 ms';
  return (x < 10 ? x.toFixed(1) : String(Math.round(x))) + ' ms';
}
