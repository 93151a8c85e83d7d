// Package adversary is the test suite of a malicious member: each test is
// one attack by a member of a group (or an outsider it works with) on honest
// members, run against real nodes talking HTTP over loopback, and each
// asserts what the honest members rely on. The package has no code of its
// own; its tests are the threat model's evidence (docs/PROTOCOL.md cites
// them by name).
//
// # The malicious member
//
// The malicious member M is a real node (package node, started by the
// node/nodetest harness) whose operator also uses the hooks of
// node/rogue.go: node.Node.SignRaw signs any envelope as the node, with
// its next counter; node.Node.ProposeRaw and node.Node.ProposeConfRaw
// put any frame in the group's log through the node's raft, as a normal
// entry or as the authorisation of any membership change;
// node.Node.ReportSilent sends a member a signed ping that reports any host
// cut off; node.Node.LieAboutLog has the node's own reports of a silence give
// a longer log than it has, and node.Node.ForceCampaign has it campaign at
// once (both used by node.TestVoterLyingAboutItsLog, on the simulated
// network); and node.Node.LogFrames reads the committed log a node holds. A member can
// do all of this with a modified build of its own node; the hooks only save
// writing one. Whatever M's own node would refuse through its API, M signs
// and proposes anyway; the honest members' state machines are what stand
// in its way.
//
// # What every test asserts
//
// Each attack is checked three ways. The entries it put in the log are
// rejected, for the expected reason, by the group's state machine applied
// to an honest member's log (the same pure function every member and every
// transcript verifier applies). Each honest node counts the rejections
// (Status().Rejected, by reason). And the honest nodes' state, as their
// status and invite list show it (members, names, addresses, voters,
// admins, settings, open invites), is what it was before the attack. Where
// an identity must not read, its keys are tried on the ciphertext of an
// honest member's log, every key header included, not only through a node.
//
// Each test was first watched to succeed with the check it targets disabled
// in package state (or crypto, identity) and then to fail with the check
// restored.
//
// # The attacks
//
// TestSockPuppetAfterRemoval: where members may invite, M invites a second
// identity P of its own, then the admin removes M. Claim: an invite stands
// only while its inviter could make it again; P's join through an honest
// member is refused, P never becomes a member, and neither P's keys nor M's
// open what the members send after M's removal.
//
// TestReplayOldFrames: a still-member M2, colluding with the removed M,
// proposes again old signed frames of others from the log: the admin's
// invite of M and M's join (to bring M back), the admin's removal of a
// member who has since rejoined, old settings, admin-role, invite (of a
// since-revoked invitee), address, latency-map, voter-change and checkpoint
// entries, and the genesis. Claim: each signer's non-chat entries carry
// increasing counters that the state machine enforces, so no signed entry
// takes effect twice or anywhere but at its place; every replay is rejected
// and the removed member stays out and reads nothing sent after its
// removal.
//
// TestStolenMessageID: M, hosting, drops an honest member's forwarded
// message and commits one of its own under the same id. Claim: the
// member's node does not take M's message for its own; it sends its
// message again under a new id, which is committed once, and counts the
// taken id.
//
// TestReorderedOwnProposals: M signs an invite and then its revocation, and
// proposes them in the other order. Claim: a member's entries take effect
// only in the order it signed them; the invite it took back does not stand.
// (A host that reordered an honest member's proposals would meet the same
// rule.)
//
// TestDemoteEveryOtherVoter: M, one voter of three, demotes each other
// voter to be the only one. Claim: a group keeps min(3, members, max
// voters) voters; no member can make itself the only voter.
//
// TestNonAdminActs: M, not an admin, where only admins invite, removes a
// member and the admin, changes the settings, grants itself the admin role
// and withdraws the admin's, invites, and revokes the admin's invite.
// Claim: only admins remove others, change roles and settings, and (unless
// the settings allow members) invite; only an invite's author or an admin
// revokes it. M's own node refuses each through its API; the honest
// members reject each as an entry.
//
// TestWeakKeyOutsider: an outsider's id is built on a small-order ed25519
// key (the identity point, canonical and not), which verifies the forged
// signature R = identity, S = 0 on any message. Claim: such ids are
// refused when invited (by the API and by the state machine), and frames
// "signed" by such keys never verify; the id never becomes a member, so no
// message is ever sealed to it.
//
// TestNonCanonicalEncodings: M signs entries whose bodies are valid values
// in non-canonical CBOR (a long string length, a long integer, an
// indefinite-length array), and an envelope whose own encoding is not
// canonical. Claim: a signed statement has exactly one encoding; any other
// is rejected, so no second frame for the same statement exists and no
// bytes hide in one.
//
// TestExpiredOrRevokedInvite: an invitee whose invite was revoked joins
// with its code, one whose invite expired asks for a join challenge, and M
// proposes both joins itself. Claim: a revoked or expired invite (expired
// by the group's clock, the lower median of the members' signing times)
// admits nobody: members refuse the join at the door, and the state
// machine rejects it in the log.
//
// TestLyingSilentReports: the host is healthy and heard by every honest
// member, but one voter of five, then two, report it silent (ping flag bit
// 2, a cut-off host) to every member, for the host and term everyone
// follows, and three report it for a stale term or another host. Claim:
// a backup forces a campaign only when a majority of the voters, itself
// among them, no longer hear the host; the host stays, in its term, and the
// group keeps committing.
package adversary
