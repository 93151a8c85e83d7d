package api

import (
	"net/url"
	"strings"
)

// Prefix starts the path of every route of the local API. Its version changes
// only with an incompatible change of the API.
const Prefix = "/api/v1"

// GroupIDVar is the path variable that stands for a group id in the routes of
// one group, written {group_id} in them.
const GroupIDVar = "group_id"

// groupIDPattern is GroupIDVar as it stands in a route.
const groupIDPattern = "{" + GroupIDVar + "}"

// MessageIDVar is the path variable that stands for a message id in the
// routes that change a message, written {message_id} in them.
const MessageIDVar = "message_id"

const messageIDPattern = "{" + MessageIDVar + "}"

// The routes of the local API, as a server registers them. Fill in the group
// id of a group's route with [GroupPath].
const (
	// RouteStatus: GET answers the [Status].
	RouteStatus = Prefix + "/status"
	// RouteGroups: GET lists the groups as [GroupInfo]; POST with a
	// [CreateGroupRequest] creates one.
	RouteGroups = Prefix + "/groups"
	// RouteInvites: POST with an [InviteRequest] answers an [InviteResponse],
	// with status 200 and the code, or 202 when the invite is queued (the
	// group cannot commit now); GET lists the group's open invites as
	// [PendingInvite], oldest first, then this node's queued ones.
	RouteInvites = Prefix + "/groups/" + groupIDPattern + "/invites"
	// RouteRevoke: POST with a [RevokeRequest] revokes an open invite; it
	// answers 204 once the revocation is committed.
	RouteRevoke = Prefix + "/groups/" + groupIDPattern + "/invites/revoke"
	// RouteLeave: POST with an empty object ({}) makes this node leave the
	// group; it answers 204 once the departure is committed.
	RouteLeave = Prefix + "/groups/" + groupIDPattern + "/leave"
	// RouteRemove: POST with a [MemberRequest] removes that member (admins
	// only); it answers 204 once the removal is committed.
	RouteRemove = Prefix + "/groups/" + groupIDPattern + "/remove"
	// RouteAdmins: POST with an [AdminRequest] grants or withdraws a
	// member's admin role (admins only); it answers 204 once committed.
	RouteAdmins = Prefix + "/groups/" + groupIDPattern + "/admins"
	// RouteSettings: GET answers the group's [GroupSettings]; PUT with
	// [GroupSettings] changes them (admins only) and answers them once
	// committed.
	RouteSettings = Prefix + "/groups/" + groupIDPattern + "/settings"
	// RouteRename: POST with a [RenameRequest] renames the group (admins
	// only); it answers 204 once the new name is committed.
	RouteRename = Prefix + "/groups/" + groupIDPattern + "/rename"
	// RouteRekey: POST (no body) asks the group for new sender keys after
	// a suspected compromise; it answers 204 once the rekey is committed.
	RouteRekey = Prefix + "/groups/" + groupIDPattern + "/rekey"
	// RouteReconnect: POST with a [ReconnectRequest] points this node at a
	// current member of the group and answers a [ReconnectResponse] once
	// this node has caught up from it.
	RouteReconnect = Prefix + "/groups/" + groupIDPattern + "/reconnect"
	// RouteKeepers: POST with a [KeeperRequest] adds a keeper to the group
	// (admins only) and answers a [KeeperResponse] once its invite is
	// committed.
	RouteKeepers = Prefix + "/groups/" + groupIDPattern + "/keepers"
	// RouteReform: POST with a [ReformRequest] continues a group halted
	// after a fork (its status has a fork alert) in a successor group
	// without the member the request or the node's proof names, and
	// answers a [ReformResult]: a successor that another member offered
	// this node and whose history matches is joined, otherwise this node
	// starts one and invites the others. A group that is not halted is a
	// 400.
	RouteReform = Prefix + "/groups/" + groupIDPattern + "/reform"
	// RouteJoin: POST with a [JoinRequest] joins a group.
	RouteJoin = Prefix + "/join"
	// RouteMessages: POST with a [SendRequest] sends a [Message]; GET lists
	// the group's messages, committed ones in order, then queued ones, as
	// an array of [Message]. GET with a page query (limit=N, before=ID or
	// both) answers a [MessagePage] instead: a page of that list and
	// whether older messages exist. A limit out of 1..[MaxPage] is a 400,
	// an id that is not one of the group's messages a 404.
	RouteMessages = Prefix + "/groups/" + groupIDPattern + "/messages"
	// RouteSearch: GET ?q=TEXT&limit=N lists the group's messages whose
	// text holds TEXT, case aside, the newest first (at most N, default
	// 50), as an array of [Message].
	RouteSearch = Prefix + "/groups/" + groupIDPattern + "/search"
	// RouteReact: POST with a [ChangeRequest] reacts to the message named
	// by MessageIDVar (or takes this member's reaction back).
	RouteReact = RouteMessages + "/" + messageIDPattern + "/react"
	// RouteEdit: POST with a [ChangeRequest] gives new text to one of this
	// member's messages.
	RouteEdit = RouteMessages + "/" + messageIDPattern + "/edit"
	// RouteDelete: POST with a [ChangeRequest] deletes one of this
	// member's messages.
	RouteDelete = RouteMessages + "/" + messageIDPattern + "/delete"
	// RouteRead: POST with an empty JSON object marks the group read through the message
	// named by MessageIDVar, a message in the group's order, and answers a
	// [ReadMark]; a mark never goes back.
	RouteRead = RouteMessages + "/" + messageIDPattern + "/read"
	// RoutePreferences: GET answers the person's [Preferences]; PUT with
	// [Preferences], every field given, changes them and answers them.
	RoutePreferences = Prefix + "/preferences"
	// RouteTranscript: GET answers the group's signed transcript, a JSON
	// document for download; with the query from= and to= (see
	// [TranscriptRange]), the transcript of a range.
	RouteTranscript = Prefix + "/groups/" + groupIDPattern + "/transcript"
	// RouteBackupStore: GET answers a consistent copy of the node's store
	// (a bbolt file, application/octet-stream, with its Content-Length),
	// for `demes backup`, which seals it with the rest of the home.
	RouteBackupStore = Prefix + "/backup/store"
	// RouteEvents: GET answers server-sent events, one [Event] per "data:"
	// line.
	RouteEvents = Prefix + "/events"
	// RouteQR: GET with the query parameter "text" answers a PNG QR code of
	// that text.
	RouteQR = Prefix + "/qr"
	// RouteDemo: GET answers the [DemoState].
	RouteDemo = Prefix + "/demo"
	// RouteNodeStop: POST stops the node, in demo mode only.
	RouteNodeStop = Prefix + "/node/stop"
	// RouteNodeStart: POST starts the node again, in demo mode only.
	RouteNodeStart = Prefix + "/node/start"
	// RouteSessionChallenge: POST {"page_nonce"} answers {"node_nonce",
	// "node_proof"}: the node's proof that it knows the token, the first
	// step of a browser page's session (package web, session.go). It needs
	// no token.
	RouteSessionChallenge = Prefix + "/session/challenge"
	// RouteSession: POST {"page_nonce", "node_nonce", "page_proof"}
	// answers {"session"}: an id that stands for the token, in the
	// Authorization header or the "session" query parameter of a GET, for
	// as long as the node's process runs. It needs no token.
	RouteSession = Prefix + "/session"
)

// GroupPath returns the path of a group's route (one with {group_id}) for
// the group groupID, escaped so that the id stays one path segment whatever
// it contains. A route without {group_id} comes back unchanged.
func GroupPath(route, groupID string) string {
	return strings.Replace(route, groupIDPattern, url.PathEscape(groupID), 1)
}

// MessagePath fills in the group id and the message id of a route that
// changes a message.
func MessagePath(route, groupID, messageID string) string {
	return strings.Replace(GroupPath(route, groupID), messageIDPattern, url.PathEscape(messageID), 1)
}
