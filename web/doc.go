// Package web is a node's local API and browser UI: the handler behind the UI
// listener of `demes serve`.
//
// Most callers need two things: [NewToken] once, to make the secret that the
// browser and the CLI present, and [NewHandler] with a [Config], served on a
// loopback listener:
//
//	ln, err := net.Listen("tcp", "127.0.0.1:0")
//	...
//	token, err := web.NewToken()
//	...
//	h := web.NewHandler(web.Config{
//		Backend: n,                  // the node
//		Token:   token,
//		Addr:    ln.Addr().String(), // the real address, port included
//		Logger:  logger,
//	})
//	srv := &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context { return ctx }}
//	fmt.Printf("http://%s/#token=%s\n", ln.Addr(), token)
//
// Cancel the server's BaseContext when shutting down: the event stream
// (below) is a request that never ends by itself, and http.Server.Shutdown
// waits for it.
//
// # The browser UI
//
// GET / and the static files under it are the embedded UI (directory ui/:
// plain HTML, CSS and JavaScript modules, no build step; app.js lists the
// modules and what each does). They hold no data, so they are served without
// the token. The page reads the token from the address fragment
// (#token=...), which browsers never send to servers, or from a form where
// the person pastes that address or the token alone; it keeps the token in
// sessionStorage and removes it from the address bar.
//
// The page never sends the token. It opens a session (session.go): POST
// /api/v1/session/challenge with a fresh nonce, to which the node answers
// with its own nonce and an HMAC of both and of the address asked under
// the token; only if that HMAC is right (for the page's own address) does
// the page answer, with its own HMAC, at POST
// /api/v1/session, and get a session id, which it then sends where the
// token would go. Sessions live in the node's memory: whatever listens on
// the UI's port while the node is down gets a nonce and, at most, the id
// of a session that died with the node's process. A page whose session is
// refused (the node restarted) opens another.
//
// # The API
//
// Every route under /api/v1 speaks JSON and needs the token. Errors are a
// non-2xx status with {"error": "...", "hint": "..."}; errors from the
// [Backend] that wrap [api.ErrNotFound], [api.ErrInvalid],
// [api.ErrForbidden] or [api.ErrStopped] become 404, 400, 403 and 503,
// anything else 500. A 403 is a refusal by the group's rules: its error is
// the rule in plain words ("only admins may remove members") and its hint
// what to do instead, as the person reads them in the UI and the CLI. The
// routes and the bodies are defined in package api, which the CLI's client
// shares:
//
//	GET  /api/v1/status                      api.Status
//	GET  /api/v1/groups                      [api.GroupInfo]
//	POST /api/v1/groups                      {"name"} -> api.GroupInfo
//	POST /api/v1/groups/{group_id}/invites   {"public_id", "expires_in_s"} -> {"code"}
//	GET  /api/v1/groups/{group_id}/invites   [api.PendingInvite], the open invites, oldest first
//	POST /api/v1/groups/{group_id}/invites/revoke  {"invite"} (code or public id) -> 204
//	POST /api/v1/groups/{group_id}/leave     {} -> 204
//	POST /api/v1/groups/{group_id}/remove    {"public_id"} -> 204 (admins)
//	POST /api/v1/groups/{group_id}/admins    {"public_id", "admin"} -> 204 (admins)
//	GET  /api/v1/groups/{group_id}/settings  api.GroupSettings
//	PUT  /api/v1/groups/{group_id}/settings  api.GroupSettings -> the same (admins)
//	POST /api/v1/join                        {"code"} -> api.GroupInfo, once joined and caught up
//	POST /api/v1/groups/{group_id}/messages  {"text", "timeout_ms"} -> api.Message
//	GET  /api/v1/groups/{group_id}/messages  [api.Message], committed in order, then tentative
//	GET  /api/v1/groups/{group_id}/messages?limit=N&before=ID  api.MessagePage: a page and "more"
//	GET  /api/v1/groups/{group_id}/transcript the signed transcript (a JSON download)
//	GET  /api/v1/backup/store                a copy of the node's store (bbolt), for demes backup
//	GET  /api/v1/events                      server-sent events, one api.Event per "data:" line
//	GET  /api/v1/qr?text=...                 a PNG QR code of text (at most 2048 bytes)
//	GET  /api/v1/demo                        {"enabled", "running"}
//	POST /api/v1/node/stop, /api/v1/node/start  demo mode only (404 otherwise)
//
// GET .../messages with limit=N (1 to api.MaxPage) answers the newest N
// messages, with before=ID those right before that message, as an
// api.MessagePage ({"messages", "more"}): more says whether older messages
// exist, to ask for with before= the first message's id. The UI opens a group
// on its newest page and asks for older ones as the reader scrolls up; the
// node keeps only its newest messages in memory and reads older pages from
// its store. A bad limit is a 400, an unknown id a 404.
//
// POST .../messages waits up to timeout_ms (default 10 s) for the message to
// commit. It answers 200 with state "committed", or 202 with state
// "tentative" when the wait ran out or the group cannot commit now (the
// message then went directly to the members online, and "delivered" says
// to how many of the "others"): it stays in the node's outbox and joins the
// group's order later, exactly once.
//
// The membership changes (revoke, leave, remove, admins, settings) answer
// once the change is committed to the group's log, or fail when it is not
// committed within the node's membership timeout.
//
// # Security
//
// The UI listener is on loopback, but every web page the user visits can
// reach loopback too. So, in this order:
//
//   - The Host header must name this listener (127.0.0.1, localhost or [::1]
//     with its port, or [Config.Addr]); anything else is a DNS-rebinding
//     attempt and gets 403.
//   - An Origin header, when present, must be http:// plus one of those
//     hosts; a cross-site request gets 403.
//   - /api/ refuses requests that the browser marks as coming from another
//     site (Sec-Fetch-Site other than same-origin or none), with 403.
//   - /api/ needs the token or a session: "Authorization: Bearer TOKEN"
//     (or SESSION), or, for GET requests only (EventSource and <img>
//     cannot set headers), a "token" or "session" query parameter.
//     Compared in constant time (the session by its hash); 401 otherwise.
//     The two session routes need neither: they are how a page shows it
//     knows the token.
//   - POST and PUT requests must have Content-Type application/json (415
//     otherwise), which an HTML form cannot send.
//
// Every response carries a strict Content-Security-Policy (no inline script
// or style, no outside resources), X-Frame-Options DENY, nosniff and
// Referrer-Policy no-referrer; API responses are not cached. Rejected
// requests are logged with their reason and never with a token.
package web
