// DeMeS browser UI: errors in plain words.
//
// The node's errors are written for its log and the CLI: they chain what
// failed at each layer ("join: invite code does not verify: verify
// envelope: ..."). A person needs to know what happened and what to do, so
// the page shows a sentence chosen from the kind of failure instead, and
// the node's own text only where it is already meant for people: a refusal
// by the group's rules (403), which is the rule and its remedy.
//
// The node's text goes to the browser console, for whoever debugs.

// Sentences for failures that do not depend on the action.
const NOT_ANSWERING = 'Your DeMeS node is not answering. Check that demes serve is still running; this page reconnects by itself when it is back.';
const STOPPED = 'Your node is stopped. Start it again, then try once more.';
const TIMEOUT = 'The group did not answer in time: too few of its members may be online. Try again in a moment.';
const TOKEN = 'Your node no longer accepts this page’s access token. Run demes ui to print the current address, and open it.';
const NO_GROUP = 'This group is no longer on your node. Pick another one from the list.';
const INTERNAL = 'Your node could not do this. Try again; if it keeps failing, the log of demes serve says why.';

// Join failures, by what the node's text says. The first match wins.
const JOIN = [
  [/not an invite code/i, 'This is not an invite code. An invite code starts with demes-invite-; paste the whole code you were given.'],
  [/is for .* not for this node/i, 'This invite was made for someone else. Give the inviter your public id (under “My identity”) and ask for a new code.'],
  [/expired/i, 'This invite has expired. Ask the person who invited you for a new one.'],
  [/refused this invite|revoked|already used/i, 'The group no longer accepts this invite: it was revoked or already used. Ask for a new one.'],
  [/already a member/i, 'You are already a member of this group.'],
  [/damaged|does not verify|malformed|signature|not signed|names no member|no such invite|decode|base64|envelope|version/i,
    'This invite code is incomplete or damaged. Ask for a new one or paste it again in full.'],
  [/no member of the group accepted|unreachable|connect|dial|timeout|deadline|refused/i,
    'Nobody in the group could be reached. Check your internet connection, ask the person who invited you to keep DeMeS running, and try again.'],
];

// Invite failures, by what the node's text says.
const INVITE = [
  [/public id|demes1|not a valid|checksum|bech32/i, 'That is not a public id. A public id starts with demes1; ask them for it again (they find it under “My identity”) and paste all of it.'],
  [/already a member/i, 'They are already a member of this group.'],
  [/not a member/i, 'You are no longer a member of this group, so you cannot invite to it.'],
];

function byPattern(table, text) {
  for (const [re, sentence] of table) if (re.test(text)) return sentence;
  return '';
}

// plain returns what to tell a person about err, a failed request for
// action: "join", "invite", "send", "create", "export" or anything else.
export function plain(err, action) {
  if (!err || typeof err.status !== 'number') return INTERNAL;
  console.warn('DeMeS: ' + (action || 'request') + ' failed:', err.status, err.message, err.hint || '');
  const text = err.message + ' ' + (err.hint || '');
  switch (err.status) {
    case 0: return NOT_ANSWERING;
    case 401: return TOKEN;
    case 503: return STOPPED;
  }
  // A join fails for reasons about the code or the group, whatever the
  // status: the node's words say which.
  if (action === 'join') {
    if (err.status === 504) return byPattern(JOIN, 'timeout');
    return byPattern(JOIN, text) || 'Could not join with this invite code. Ask for a new one and try again.';
  }
  if (err.status === 504) return TIMEOUT;
  if (err.status === 403) return refusal(err);
  if (action === 'invite') return byPattern(INVITE, text) || INTERNAL;
  if (action === 'create' && err.status === 400) return 'The group needs a name.';
  if (action === 'send' && err.status === 400) return 'Your node did not take this message. Shorten it, or try again.';
  if (err.status === 404) return NO_GROUP;
  if (err.status === 429) return 'You are sending faster than the group allows. Wait a moment and send again.';
  return INTERNAL;
}

// refusal is a 403's rule and remedy, already in words for people.
function refusal(err) {
  const rule = err.message.charAt(0).toUpperCase() + err.message.slice(1);
  return err.hint ? rule + ' (' + err.hint + ').' : rule + '.';
}
