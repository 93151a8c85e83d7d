// Package transcript exports and verifies signed transcripts of a DeMeS group:
// a file that lets anyone, member or not, check a group's history offline.
//
// A transcript holds every committed entry of the group's log that carries a
// signed envelope (the genesis, the membership history, the chat messages as
// ciphertext, latency maps, checkpoints), the messages the exporting member
// could decrypt with their authors' inner signatures, the head of the
// transcript hash chain, and the exporter's signature over all of it. The
// format is specified in docs/PROTOCOL.md (section Transcripts).
//
// # Exporting
//
// A member calls [Build] with the committed entries of its log, in order. Build
// replays them through the group's state machine (package state) exactly as the
// member's node did, opens every accepted chat message it can, and signs the
// document. [BuildWith] exports a range: every entry all the same (so the
// history checks as a whole transcript's does), and the decrypted messages
// of the range only, which the signed body states as log indexes; the
// other messages stay ciphertext.
//
// # Verifying
//
// [Verify] needs nothing but the file (and, optionally, the public ids the
// reader trusts). It checks every envelope signature (on all cores: that is
// where the time goes), replays the entries through a fresh state machine
// with the same acceptance rules as a member, recomputes the hash chain,
// checks the checkpoints, checks each decrypted message against its author's
// signature and against the accepted entry at its position, and finally the
// exporter's signature. It returns a [Summary], or the first problem found;
// every error wraps one of the sentinel errors below, so that callers can tell
// an edited message ([ErrEditedText]) from, say, a removed entry
// ([ErrRemoved]) with errors.Is.
//
// Content is checked before the exporter's signature, so that a tampered file
// is reported by what was changed rather than only by the signature that no
// longer verifies.
//
// # What a transcript proves
//
// Each entry was signed by its sender, and the entries are in the order the
// group committed them, with nothing removed, inserted or reordered relative
// to the head the exporter states and to every checkpoint other members
// signed. Each decrypted message was written by its author, with that text,
// and is the accepted chat message at its position (same author, same message
// id). What it cannot prove is that the ciphertext at that position decrypts
// to that text: only a recipient can open it. An author who signed two
// different texts under one message id could show a colluding exporter the
// other one.
package transcript
