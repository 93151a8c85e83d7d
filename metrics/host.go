package metrics

import (
	"net"
	"net/http"
	"strings"
)

// OnlyHost serves h only to requests whose Host header names the listener
// by an address, or as localhost: an IP literal or "localhost", with any
// port or none (a port forwarded elsewhere, a proxy that keeps the Host).
// The listener is on loopback, but a web page the user opens could still
// read it through a DNS name of its own that resolves to 127.0.0.1 (DNS
// rebinding); its Host header names that name, which is refused. The UI
// refuses such requests too (package web). addr, the listener's address,
// is accepted as it is.
func OnlyHost(addr string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if name, _, err := net.SplitHostPort(host); err == nil {
			host = name
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if r.Host != addr && !strings.EqualFold(host, "localhost") && net.ParseIP(host) == nil {
			http.Error(w, "the Host header names no address of this listener: use the address demes serve printed", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
