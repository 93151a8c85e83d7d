// Package api defines the local HTTP API of a DeMeS node, the one its browser
// UI and the demes command line use: the routes, and the JSON bodies they
// take and answer with.
//
// It holds only data and names, no behaviour, and imports only the standard
// library, so the server (package web), the client (cmd/demes) and the node
// that fills the answers (package node) share one definition without pulling
// in each other.
//
// # Routes
//
// Every route starts with [Prefix] and needs the API token. Routes for one
// group contain the path variable {group_id} ([GroupIDVar]): a server
// registers the route as it is, a client fills it in with [GroupPath]:
//
//	resp, err := http.Get(base + api.GroupPath(api.RouteMessages, groupID))
//
// What each route takes and answers is documented at its constant, and in
// full, with the security checks in front of it, in package web.
//
// # Errors
//
// A failed request answers a non-2xx status with an [ErrorResponse]. The node
// wraps [ErrNotFound], [ErrInvalid], [ErrForbidden] or [ErrStopped] in its
// errors where one applies, and the server maps them to 404, 400, 403 and
// 503. A 403 is a refusal by the group's rules (only admins remove members,
// for instance): its error says which rule, in plain words, and its hint
// what to do instead.
//
// Field names in JSON follow the command-line contract (docs/CLI.md): scripts
// read them through `demes status --json` and the like, so they change only
// with a migration note.
package api
