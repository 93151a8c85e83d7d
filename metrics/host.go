package metrics

import (
	"net"
	"net/http"
	"strings"
)

// OnlyHost serves h only to requests whose Host header names the listener
// at addr (HOST:PORT) by one of its loopback names: 127.0.0.1, localhost or
// [::1] with its port, or addr itself. The listener is on loopback, but a
// web page the user opens could still read it through a name of its own
// that resolves to 127.0.0.1 (DNS rebinding); its Host header names that
// name. The UI refuses such requests the same way (package web).
func OnlyHost(addr string, h http.Handler) http.Handler {
	allowed := map[string]bool{strings.ToLower(addr): true}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
			allowed[strings.ToLower(net.JoinHostPort(host, port))] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[strings.ToLower(r.Host)] {
			http.Error(w, "the Host header does not name this listener: use the address demes serve printed", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
