package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
)

// contentSecurityPolicy allows the page its own script, style, images and
// API, and nothing else: no inline script or style (so injected markup
// cannot run), no outside resources, no framing, no form submission.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// setSecurityHeaders sets the headers every response carries.
func setSecurityHeaders(h http.Header, api bool) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Other sites may not embed our responses (the QR image, say) even
	// where CORS does not apply.
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if api {
		h.Set("Cache-Control", "no-store")
	}
}

// checkToken returns why r carries neither the right token nor a live
// session (session.go), or "" when it carries one. The reason is for the
// log, so it never contains the token.
func (h *handler) checkToken(r *http.Request) string {
	var got string
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, tok, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "Authorization header is not a bearer token"
		}
		got = strings.TrimSpace(tok)
	} else if r.Method == http.MethodGet {
		// EventSource and <img> cannot set headers. Only reads may use
		// the query: a token in a URL is easier to leak, and a request
		// that changes something should prove more than a link can.
		q := r.URL.Query()
		if got = q.Get("session"); got == "" {
			got = q.Get("token")
		}
	}
	if got == "" {
		return "no token"
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1 || h.sessions.valid(got) {
		return ""
	}
	return "wrong token, or a session of an earlier start"
}

// reject answers a request that failed a check and logs why. The log has
// the path but not the query, which can hold a token.
func (h *handler) reject(w http.ResponseWriter, r *http.Request, status int, msg, hint, reason string) {
	h.log.Warn().
		Int("status", status).
		Str("reason", reason).
		Str("method", r.Method).
		Str("path", clip(r.URL.Path)).
		Str("remote", r.RemoteAddr).
		Str("host", clip(r.Host)).
		Str("origin", clip(r.Header.Get("Origin"))).
		Msg("rejected local API request")
	writeError(w, status, msg, hint)
}

// clip shortens attacker-chosen strings before they reach the log.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// isSafeMethod reports whether a request with this method only reads.
func isSafeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// isJSON reports whether a Content-Type header is JSON. An HTML form can only
// send urlencoded, multipart or text/plain bodies, so this alone stops forms
// from other sites from changing anything.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
