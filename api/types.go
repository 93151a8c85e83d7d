package api

import (
	"errors"
	"fmt"
	"time"
)

// GroupInfo names one group this node belongs to.
type GroupInfo struct {
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
	// Left is set for a group this node left or was removed from: it keeps
	// the history it has, and reads and sends nothing there any more.
	Left bool `json:"left,omitempty"`
	// RemovedBy is set when an admin removed this node from the group
	// (rather than it leaving): that admin's public id, and RemovedByName
	// the admin's name then.
	RemovedBy     string `json:"removed_by,omitempty"`
	RemovedByName string `json:"removed_by_name,omitempty"`
}

// Message is one chat message as a member reads it.
type Message struct {
	ID      string    `json:"id"`     // hex message id, stable across retries
	Index   uint64    `json:"index"`  // position in the group's log; 0 while queued
	Author  string    `json:"author"` // public id (demes1...)
	Name    string    `json:"name"`   // author's display name, if known
	Text    string    `json:"text"`
	SentAt  time.Time `json:"sent_at"`
	State   string    `json:"state"` // StateCommitted or StateTentative
	GroupID string    `json:"group_id"`
	// Order places a tentative message among the other tentative ones of
	// its group (they come after every committed message): a Lamport
	// clock, larger than the index of every message its author had
	// applied and the order of every tentative one it had seen. 0 for a
	// committed message.
	Order uint64 `json:"order,omitempty"`
	// Delivered and Others are set on this node's own tentative messages:
	// how many of the group's other members hold the message already
	// (directly, before it is in the group's order), out of how many.
	Delivered int `json:"delivered,omitempty"`
	Others    int `json:"others,omitempty"`
	// Held is set on this node's own tentative message while it waits in
	// the outbox because sending it now would be over this member's quota
	// in the group (its settings: messages per minute, bytes per day): it
	// goes out by itself, in order, once the quota allows.
	Held bool `json:"held,omitempty"`
	// ReplyTo is the id of the message this one replies to, if any.
	ReplyTo string `json:"reply_to,omitempty"`
	// Reactions are the members' reactions to the message, by emoji,
	// most first.
	Reactions []Reaction `json:"reactions,omitempty"`
	// Edited says that the author changed the text, which is the latest.
	Edited bool `json:"edited,omitempty"`
	// Deleted says that the author deleted the message: its text is
	// empty.
	Deleted bool `json:"deleted,omitempty"`
	// Kind and Target are set only on the answer to a reaction, an edit
	// or a delete (a change, which is a message of the group's log but
	// is never listed): "reaction", "edit" or "delete", and the id of
	// the message it changes.
	Kind   string `json:"kind,omitempty"`
	Target string `json:"target,omitempty"`
	// Unchanged is set on the answer to a change that would change
	// nothing (taking back a reaction there is none of, or the same
	// reaction again): it was not sent, and the answer has no id.
	Unchanged bool `json:"unchanged,omitempty"`
	// Attachment is set on a file message (its text is the file's name).
	Attachment *Attachment `json:"attachment,omitempty"`
	// NameShared says that another member or former member of the group
	// goes by a display name that looks the same as the author's (see
	// [Member].NameShared): the name alone does not tell who wrote the
	// message, so a client shows AuthorFingerprint beside it.
	// AuthorFingerprint is the author's fingerprint, set with NameShared
	// only.
	NameShared        bool   `json:"name_shared,omitempty"`
	AuthorFingerprint string `json:"author_fingerprint,omitempty"`
}

// Attachment is the file a message carries (docs/PROTOCOL.md,
// "Attachments"), as this node holds it.
type Attachment struct {
	Name string `json:"name"`
	Type string `json:"type"` // media type
	Size int64  `json:"size"` // bytes
	// Blob is the hex id of the encrypted file (SHA-256 of the
	// ciphertext).
	Blob string `json:"blob"`
	// Ready says that this node holds the file: it can be downloaded.
	// Until then Received says how many of its encrypted bytes arrived.
	Ready    bool  `json:"ready"`
	Received int64 `json:"received,omitempty"`
	// Skipped says that this node did not fetch the file by itself: its
	// author sent more files than the node's daily allowance. Opening it
	// (a download) fetches it.
	Skipped bool `json:"skipped,omitempty"`
}

// Reaction is one emoji given to a message, and by how many members.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	// Mine says that this node's member gave it.
	Mine bool `json:"mine,omitempty"`
	// Legacy says that it is not one emoji but words, such as "+1", which
	// an earlier DeMeS sent as reactions. Whoever gave it may take it back
	// ("remove"); no one may give it again: the reaction route takes
	// only emoji (a 400 otherwise).
	Legacy bool `json:"legacy,omitempty"`
}

// Message states.
const (
	// StateCommitted marks a message in the group's log, in group order.
	StateCommitted = "committed"
	// StateTentative marks a message not in the group's order yet: one of
	// this node's still in its outbox (accepted, to be committed exactly
	// once), or another member's that reached this node directly, before
	// the group could commit it (docs/PROTOCOL.md, "Tentative delivery").
	// It takes its place in the order, under the same id, once committed.
	StateTentative = "tentative"
)

// Member is one member of a group as this node sees it.
type Member struct {
	PublicID    string  `json:"public_id"`
	Name        string  `json:"name"`
	Fingerprint string  `json:"fingerprint"`
	Voter       bool    `json:"voter"`
	Online      bool    `json:"online"`
	RTTMillis   float64 `json:"rtt_ms"` // this node's smoothed RTT to the member; 0 for itself or unknown
	Host        bool    `json:"host"`
	Self        bool    `json:"self"`
	SafetyNum   string  `json:"safety_number,omitempty"` // with this node's identity; empty for itself
	PeerURL     string  `json:"peer_url,omitempty"`
	// Path is how this node reaches the member over libp2p now: "direct",
	// "relayed" (only through a circuit relay), or empty (not connected
	// over libp2p, or this node itself).
	Path  string `json:"path,omitempty"`
	Admin bool   `json:"admin"` // may remove members, change roles and settings
	// Keeper marks a keeper: an always-on node that holds the group's log
	// and votes, and reads nothing.
	Keeper bool `json:"keeper,omitempty"`
	// HoldsThrough is the log index through which the member's device is
	// known to hold the group's history: its latest signed statement of
	// its chain head that matched this node's (for this node itself, what
	// it applied). A message at or below it was delivered to the member.
	HoldsThrough uint64 `json:"holds_through,omitempty"`
	// ReadThrough is the log index through which the member's person has
	// read the group, as the member's signed pings said; 0 when unknown,
	// or when this node's person does not share read receipts (then it
	// sees nobody's). For this node itself, its own mark.
	ReadThrough uint64 `json:"read_through,omitempty"`
	// JoinedAt is the log index of the member's join (1 for the group's
	// creator): messages before it were sealed to the members of that
	// time, so the member cannot read them.
	JoinedAt uint64 `json:"joined_at,omitempty"`
	// NameShared says that another member or former member of the group
	// goes by a display name that a person would not tell apart from this
	// one's: the same after Unicode compatibility normalization (NFKC),
	// case folding, dropping invisible characters and collapsing white
	// space. Display names are self-chosen, so one member can take
	// another's: a client then shows the Fingerprint beside the name.
	// It is also set, whatever the other names, on a name that can pass
	// for something else: one that looks blank, one written as a public
	// id or a fingerprint is shown, or as "You", and one holding
	// bidirectional controls, which draw it in another order.
	NameShared bool `json:"name_shared,omitempty"`
}

// Edge is one measured latency between two members, as the election package
// uses it (the larger of the two endpoints' reports).
type Edge struct {
	A         string  `json:"a"`
	B         string  `json:"b"`
	RTTMillis float64 `json:"rtt_ms"`
}

// GroupStatus is the state of one group.
type GroupStatus struct {
	GroupID    string   `json:"group_id"`
	Name       string   `json:"name"`
	Host       string   `json:"host"` // public id of the leader, "" if none known
	Term       uint64   `json:"term"`
	Preference []string `json:"preference"` // public ids, host first
	Members    []Member `json:"members"`
	Edges      []Edge   `json:"edges"`
	Committed  uint64   `json:"committed"` // commit index
	Queued     int      `json:"queued"`    // messages waiting in the outbox
	// Held is how many of the Queued ones wait because sending them now
	// would be over this member's quota in the group (Settings: messages
	// per minute, bytes per day); they go out by themselves when it allows.
	Held int `json:"held,omitempty"`
	// Tentative is how many other members' messages this node holds that
	// are not in the group's order yet.
	Tentative int `json:"tentative,omitempty"`
	// Waiting says, when the group cannot commit now, why, in words for a
	// person: how many voters are offline, and that messages still reach
	// the online members.
	Waiting   string `json:"waiting,omitempty"`
	HasQuorum bool   `json:"has_quorum"`
	Role      string `json:"role"` // "leader", "follower", "candidate", "learner", ...
	// RemovedBy is set, with role "left", when an admin removed this node
	// from the group rather than it leaving: that admin's public id, and
	// RemovedByName the admin's name then.
	RemovedBy     string `json:"removed_by,omitempty"`
	RemovedByName string `json:"removed_by_name,omitempty"`
	// Settings are the group's settings; Admin and CanInvite say what this
	// node may do in the group.
	Settings  GroupSettings `json:"settings"`
	Admin     bool          `json:"admin"`
	CanInvite bool          `json:"can_invite"`
	// Fork is set when this node found that the group's history forked:
	// the group is halted on this node (nothing is sent or committed) and
	// the alert says why.
	Fork *ForkAlert `json:"fork,omitempty"`
	// JoinedAt is the log index of this node's join (1 for the group's
	// creator): messages before it were sealed to the members of that
	// time, so this node cannot read them.
	JoinedAt uint64 `json:"joined_at,omitempty"`
	// Censorship is set while this node, or a majority of the voters,
	// suspects the host of holding back this node's messages.
	Censorship *CensorAlert `json:"censorship,omitempty"`
	// Keys is set when this node lost the keys its group sealed to (its
	// key store was lost, or it was restored from a backup, which holds
	// none): it says what this node asked for and from where it reads
	// again (docs/PROTOCOL.md, "Forward secrecy").
	Keys *KeysAlert `json:"keys,omitempty"`
	// Restored is set while this node's copy of the group, put back from
	// a backup, catches up: until then it takes part in no election
	// (docs/PROTOCOL.md, "A member restored from a backup"). It says so
	// in words.
	Restored string `json:"restored,omitempty"`
	// NoPrekey names the members (by name, or by id when they have none)
	// that have no valid prekey in the log: while any is listed, new
	// sender keys are sealed to the members' identity keys, which a thief
	// of an identity could open later, rather than to prekeys (forward
	// secrecy; docs/PROTOCOL.md). Empty for a node that is not a member.
	NoPrekey []string `json:"no_prekey,omitempty"`
	// ForwardSecrecy is true when this node is a member and every member
	// has a valid prekey in the log, so that new sender keys are sealed
	// to prekeys.
	ForwardSecrecy bool `json:"forward_secrecy"`
	// Continues is set for a successor group: it continues a group halted
	// after a fork, without the member named there (see [RouteReform]).
	Continues *Continuation `json:"continues,omitempty"`
	// Successors, for a halted group, lists the groups that continue it
	// which this node is in or was offered (see [RouteReform]).
	Successors []SuccessorOffer `json:"successors,omitempty"`
}

// ReconnectRequest points this node at a current member of the group, for a
// member that was away and knows no live member's address: Target is that
// member's peer URL or an invite code of the group.
type ReconnectRequest struct {
	Target string `json:"target"`
}

// KeeperRequest adds a keeper to a group: Target is the keeper's public id
// or its peer URL. ID, with a URL, is the keeper's public id as its
// operator gave it: the node at the URL must answer it, or nothing is
// committed.
type KeeperRequest struct {
	Target string `json:"target"`
	ID     string `json:"id,omitempty"`
}

// KeeperResponse is the keeper's invite code and public id. Offered is set
// when the keeper was given the code at its peer URL and joins by itself;
// otherwise its operator joins with the code (`demes join`).
type KeeperResponse struct {
	Code    string `json:"code"`
	Keeper  string `json:"keeper"`
	Offered bool   `json:"offered"`
}

// ReconnectResponse says how a reconnect went: the member that answered,
// and the last log index this node had applied before and after.
type ReconnectResponse struct {
	GroupID string `json:"group_id"`
	Member  string `json:"member,omitempty"` // public id, when this node knows it
	Before  uint64 `json:"before"`
	After   uint64 `json:"after"`
}

// Status is the state of the node and all its groups: the answer to GET
// [RouteStatus].
type Status struct {
	PublicID    string           `json:"public_id"`
	Name        string           `json:"name"`
	Fingerprint string           `json:"fingerprint"`
	PeerURL     string           `json:"peer_url"`
	Running     bool             `json:"running"`
	Groups      []GroupStatus    `json:"groups"`
	Rejected    map[string]int64 `json:"rejected"` // rejected envelopes by reason
	Version     string           `json:"version"`  // the build: version, commit, Go toolchain
	// ReadReceipts says whether this node's person shares read receipts
	// (and so sees the members'); see [Preferences].
	ReadReceipts bool `json:"read_receipts"`
	// Reachability says whether peers on the internet can dial this
	// node, as libp2p's AutoNAT found; nil when the node has no libp2p
	// listener (it uses HTTP peer URLs only).
	Reachability *Reachability `json:"reachability,omitempty"`
}

// Preferences are the person's choices on this node, for every group.
type Preferences struct {
	// ReadReceipts shares how far this person has read each group with
	// its members, and shows how far they have read (both or neither).
	ReadReceipts bool `json:"read_receipts"`
}

// ReadMark answers POST [RouteRead]: the log index through which the group
// is now marked read.
type ReadMark struct {
	ReadThrough uint64 `json:"read_through"`
}

// Event is pushed to subscribers (the browser, through the server-sent events
// of [RouteEvents]) when something they show changes.
type Event struct {
	Kind    string   `json:"kind"` // "message", "status", "file" (a file fetched)
	GroupID string   `json:"group_id,omitempty"`
	Message *Message `json:"message,omitempty"`
}

// CreateGroupRequest is the body of POST [RouteGroups]; the answer is the new
// group's [GroupInfo].
type CreateGroupRequest struct {
	Name string `json:"name"`
}

// InviteRequest is the body of POST [RouteInvites].
type InviteRequest struct {
	PublicID string `json:"public_id"` // the invitee (demes1...)
	// ExpiresInSeconds is how long the invite lasts; 0 means the default
	// (7 days). At most 90 days.
	ExpiresInSeconds int64 `json:"expires_in_s,omitempty"`
}

// GroupSettings are a group's settings, which admins change. A change sets
// them all: a quota left out (0) is the default.
type GroupSettings struct {
	// MembersInvite lets every member invite; otherwise only admins may.
	MembersInvite bool `json:"members_invite"`
	// MsgsPerMinute is how many chat messages each member may send per
	// minute, BytesPerDay how many bytes of them per day (as the log
	// stores them, sealed and signed; at least 1 MiB). A member's node
	// holds back what is over its quota and sends it when the quota
	// allows. 0 in a change means the default (120 messages, 50 MiB); a
	// group's status shows the quota in force.
	MsgsPerMinute uint32 `json:"msgs_per_minute"`
	BytesPerDay   uint64 `json:"bytes_per_day"`
	// Relays are the circuit relays every member's node reserves a slot
	// on (when it runs libp2p), so that members behind home routers reach
	// each other: each as `demes relay` prints it, at most 8 (an empty list
	// when there are none). In a change, leaving Relays out (null) keeps
	// the group's relays, and an empty list removes them all.
	Relays []string `json:"relays"`
}

// PendingInvite is an open invite: committed, not yet used, revoked or
// expired.
type PendingInvite struct {
	Invitee     string    `json:"invitee"` // public id (demes1...)
	Fingerprint string    `json:"fingerprint"`
	Inviter     string    `json:"inviter"` // public id
	InviterName string    `json:"inviter_name,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
	// State is [InviteOpen], or [InviteQueued] for an invite this node
	// accepted while the group could not commit: it has no code yet.
	State string `json:"state"`
}

// RevokeRequest names the invite to revoke: its code or its invitee's
// public id.
type RevokeRequest struct {
	Invite string `json:"invite"`
}

// MemberRequest names a member, for a removal.
type MemberRequest struct {
	PublicID string `json:"public_id"`
}

// AdminRequest grants (Admin true) or withdraws a member's admin role.
type AdminRequest struct {
	PublicID string `json:"public_id"`
	Admin    bool   `json:"admin"`
}

// InviteResponse is the answer to POST [RouteInvites].
type InviteResponse struct {
	Code string `json:"code"` // the invite code to give the invitee; "" while queued
	// State is [InviteOpen] with a code (status 200), or [InviteQueued]
	// (status 202): the group cannot commit now, the node commits the
	// invite when it can, and the same request made again then answers
	// the code. Message says so in words.
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// RenameRequest is the body of POST [RouteRename].
type RenameRequest struct {
	Name string `json:"name"`
}

// JoinRequest is the body of POST [RouteJoin]; the answer is the joined
// group's [GroupInfo], once this node is a member and has caught up.
type JoinRequest struct {
	Code string `json:"code"`
}

// SendRequest is the body of POST [RouteMessages]; the answer is the
// [Message], with status 200 when it is committed and 202 when the wait ran
// out and it is queued.
type SendRequest struct {
	Text string `json:"text"`
	// ReplyTo is the id of the message this one replies to, if any.
	ReplyTo string `json:"reply_to,omitempty"`
	// TimeoutMS is how long to wait for the commit, in milliseconds; 0
	// means the server's default (10 s).
	TimeoutMS int64 `json:"timeout_ms"`
}

// ChangeRequest is the body of POST [RouteReact], [RouteEdit] and
// [RouteDelete]: a change to the message named in the route. The answer is
// the change as a [Message] (its Kind and Target set), with status 200 when
// it is committed and 202 when it is queued, as for a send.
type ChangeRequest struct {
	// Emoji is the reaction ([RouteReact]); empty with Remove takes this
	// member's reaction back.
	Emoji  string `json:"emoji,omitempty"`
	Remove bool   `json:"remove,omitempty"`
	// Text is the new text ([RouteEdit]).
	Text      string `json:"text,omitempty"`
	TimeoutMS int64  `json:"timeout_ms"`
}

// DemoState is the answer to GET [RouteDemo], POST [RouteNodeStop] and POST
// [RouteNodeStart].
type DemoState struct {
	Enabled bool `json:"enabled"` // the node runs in demo mode and can be stopped from its UI
	Running bool `json:"running"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`          // what failed
	Hint  string `json:"hint,omitempty"` // the fix, where there is one
}

// Errors the local API maps to HTTP statuses; errors returned by the node wrap
// one of them where it applies.
var (
	// ErrNotFound: no such group, message or member (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed or not allowed (HTTP 400).
	ErrInvalid = errors.New("invalid request")
	// ErrStopped: the node is stopped (demo mode) (HTTP 503).
	ErrStopped = errors.New("node is stopped")
	// ErrForbidden: the group's rules do not allow this member the action
	// (only admins remove members, for instance) (HTTP 403).
	ErrForbidden = errors.New("not allowed")
	// ErrUnreachable: no member of a group answers at the addresses this
	// node knows (a join whose inviter is offline); maps to 502.
	ErrUnreachable = errors.New("no member reachable")
	// ErrHalted: the group is halted on this node because its history
	// forked (see [ForkAlert]); maps to 409 Conflict.
	ErrHalted = errors.New("group halted after a fork")
	// ErrUnknownMessage: a page query names a message the group does
	// not have (or this node cannot read). It wraps [ErrNotFound].
	ErrUnknownMessage = fmt.Errorf("message %w", ErrNotFound)
)

// TranscriptRange limits a transcript to the messages of a range: the query
// parameters from= and to= of GET [RouteTranscript]. Each end is a message
// id (32 hexadecimal digits), a log index (a decimal number), or a time (RFC
// 3339, or a date YYYY-MM-DD in UTC: that day's start for From, its end for
// To); empty leaves that end open, and both empty asks for the whole
// transcript. The node resolves the ends to log indexes (see
// transcript.BuildWith): a malformed end, or a start after the end, wraps
// [ErrInvalid]; an id no message has, or a range that holds no message
// this node can read, wraps [ErrNotFound].
type TranscriptRange struct {
	From, To string
}

// MaxPage is the most messages one page holds.
const MaxPage = 10000

// MessagePage is the answer of GET [RouteMessages] with a page query: the
// query parameter limit=N (1 to [MaxPage]) asks for the newest N messages,
// and before=ID for those right before the message whose id is ID (every one
// before it when limit is left out). To read a group's history from the
// newest back, ask for limit=N, then for limit=N&before= the id of the first
// message of each page while More is set. Pages stay in step whatever
// arrives meanwhile: a page ends at a fixed message, not at a count from the
// newest.
type MessagePage struct {
	// Messages are the page's messages in group order: committed ones by
	// index, then (on the newest page) this node's queued ones.
	Messages []Message `json:"messages"`
	// More reports whether the group has older messages that this node can
	// read, before the first of Messages.
	More bool `json:"more"`
	// Events are the membership changes among the page's committed
	// messages, by log index: from the first of them (from the group's
	// start on the oldest page) up to the message the page ends before
	// (to now on the newest page). A chat shows them as lines of their
	// own ("Cara joined").
	Events []MemberEvent `json:"events,omitempty"`
}

// MemberEvent is a membership change in a group's log.
type MemberEvent struct {
	Index uint64 `json:"index"`
	// Kind is "created" (the group, by its creator), "joined" or "left"
	// (a leave or a removal).
	Kind   string `json:"kind"`
	Member string `json:"member"` // public id
	Name   string `json:"name"`
	Keeper bool   `json:"keeper,omitempty"`
	// NameShared says that another member or former member goes by a
	// name that looks the same (see [Member].NameShared); Fingerprint is
	// then the member's fingerprint, to show beside the name.
	NameShared  bool   `json:"name_shared,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Member event kinds.
const (
	EventCreated = "created"
	EventJoined  = "joined"
	EventLeft    = "left"
)

// Page returns the page of msgs (a group's messages in group order) that
// ends right before the message whose id is before (the newest page when
// before is empty), at most limit long (every message before it when limit
// is 0), as the node answers a page query on an in-memory list. It returns
// ErrNotFound when no message has the id before, and ErrInvalid for a limit
// out of 0..[MaxPage]. The page's Messages are a slice of their own:
// appending to it leaves msgs alone.
func Page(msgs []Message, limit int, before string) (MessagePage, error) {
	if err := CheckLimit(limit); err != nil {
		return MessagePage{}, err
	}
	end := len(msgs)
	if before != "" {
		end = -1
		for i := range msgs {
			if msgs[i].ID == before {
				end = i
				break
			}
		}
		if end < 0 {
			return MessagePage{}, fmt.Errorf("no message %q in this group: %w", before, ErrUnknownMessage)
		}
	}
	start := 0
	if limit > 0 {
		start = max(0, end-limit)
	}
	return MessagePage{Messages: msgs[start:end:end], More: start > 0}, nil
}

// CheckLimit returns ErrInvalid, wrapped in a sentence for a person, for a
// page limit out of 0..[MaxPage] (0: no limit).
func CheckLimit(limit int) error {
	if limit < 0 || limit > MaxPage {
		return fmt.Errorf("limit %d: a page holds 1 to %d messages: %w", limit, MaxPage, ErrInvalid)
	}
	return nil
}
