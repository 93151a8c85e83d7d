package web

import (
	"net"
	"net/http"
	"strings"
	"testing"
)

// The guards of the local API: the token, the Host, Origin and
// Sec-Fetch-Site checks, the content type of a POST and the security
// headers.

func TestToken(t *testing.T) {
	_, _, u := friendsUI(t)
	const path = "/api/v1/status"
	tests := []struct {
		name   string
		method string
		path   string
		auth   string // Authorization header; "-" for none
		query  string // token query parameter
		want   int
	}{
		{"no token", "GET", path, "-", "", http.StatusUnauthorized},
		{"wrong token", "GET", path, "Bearer " + strings.Repeat("A", len(u.Token)), "", http.StatusUnauthorized},
		{"token prefix", "GET", path, "Bearer " + u.Token[:10], "", http.StatusUnauthorized},
		{"token with extra", "GET", path, "Bearer " + u.Token + "x", "", http.StatusUnauthorized},
		{"not bearer", "GET", path, "Basic " + u.Token, "", http.StatusUnauthorized},
		{"scheme only", "GET", path, "Bearer", "", http.StatusUnauthorized},
		{"right token", "GET", path, "Bearer " + u.Token, "", http.StatusOK},
		{"scheme is case-insensitive", "GET", path, "bearer " + u.Token, "", http.StatusOK},
		{"query token on GET", "GET", path, "-", u.Token, http.StatusOK},
		{"wrong query token", "GET", path, "-", "wrongtoken123", http.StatusUnauthorized},
		{"wrong header beats right query", "GET", path, "Bearer wrongtoken123", u.Token, http.StatusUnauthorized},
		{"query token on POST", "POST", "/api/v1/groups", "-", u.Token, http.StatusUnauthorized},
		{"unknown route needs a token too", "GET", "/api/v1/nope", "-", "", http.StatusUnauthorized},
		{"events need a token", "GET", "/api/v1/events", "-", "", http.StatusUnauthorized},
		{"qr needs a token", "GET", "/api/v1/qr?text=x", "-", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.path
			if tt.query != "" {
				p += "?token=" + tt.query
			}
			r := newReq(u, tt.method, p, `{"name":"x"}`)
			r.Header.Del("Authorization")
			if tt.auth != "-" {
				r.Header.Set("Authorization", tt.auth)
			}
			rec := serve(u, r)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
			if tt.want == http.StatusUnauthorized {
				decodeError(t, rec)
			}
		})
	}
	// Rejections are logged with their reason and never with a token.
	logs := u.logs.String()
	if !strings.Contains(logs, "wrong token") || !strings.Contains(logs, "no token") {
		t.Errorf("rejections not logged with their reason:\n%s", logs)
	}
	if strings.Contains(logs, u.Token[:10]) || strings.Contains(logs, "wrongtoken123") || strings.Contains(logs, "AAAAAAAA") {
		t.Errorf("a token reached the log:\n%s", logs)
	}
}

func TestHostCheck(t *testing.T) {
	_, _, u := friendsUI(t)
	_, port, _ := net.SplitHostPort(u.Addr)
	tests := []struct {
		host string
		want int
	}{
		{u.Addr, http.StatusOK},
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"evil.example:" + port, http.StatusForbidden}, // DNS rebinding: evil.example resolves to 127.0.0.1
		{"evil.example", http.StatusForbidden},
		{"127.0.0.1", http.StatusForbidden},
		{"127.0.0.1:1", http.StatusForbidden},
		{"localhost.evil.example:" + port, http.StatusForbidden},
		{"", http.StatusForbidden},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/status", "/"} {
			t.Run(tt.host+path, func(t *testing.T) {
				r := newReq(u, "GET", path, "")
				r.Host = tt.host
				rec := serve(u, r)
				if rec.Code != tt.want {
					t.Fatalf("status %d, want %d", rec.Code, tt.want)
				}
				if tt.want == http.StatusForbidden {
					decodeError(t, rec)
				}
			})
		}
	}
	if !strings.Contains(u.logs.String(), "DNS rebinding") {
		t.Errorf("host rejections not logged:\n%s", u.logs.String())
	}
}

func TestOriginCheck(t *testing.T) {
	_, _, u := friendsUI(t)
	_, port, _ := net.SplitHostPort(u.Addr)
	tests := []struct {
		origin string
		want   int
	}{
		{"", http.StatusOK}, // same-origin GETs and the CLI send none
		{"http://" + u.Addr, http.StatusOK},
		{"http://localhost:" + port, http.StatusOK},
		{"http://[::1]:" + port, http.StatusOK},
		{"http://evil.example", http.StatusForbidden},
		{"http://evil.example:" + port, http.StatusForbidden},
		{"https://" + u.Addr, http.StatusForbidden},
		{"http://127.0.0.1:1", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tt := range tests {
		for _, method := range []string{"GET", "POST"} {
			t.Run(method+" "+tt.origin, func(t *testing.T) {
				path, body := "/api/v1/status", ""
				if method == "POST" {
					path, body = "/api/v1/groups", `{"name":"g"}`
				}
				r := newReq(u, method, path, body)
				if tt.origin != "" {
					r.Header.Set("Origin", tt.origin)
				}
				rec := serve(u, r)
				if rec.Code != tt.want {
					t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
				}
			})
		}
	}
}

func TestFetchSiteCheck(t *testing.T) {
	_, _, u := friendsUI(t)
	for site, want := range map[string]int{
		"":            http.StatusOK, // the CLI, older browsers
		"same-origin": http.StatusOK,
		"none":        http.StatusOK,
		"same-site":   http.StatusForbidden, // another port on localhost
		"cross-site":  http.StatusForbidden,
	} {
		t.Run(site, func(t *testing.T) {
			r := newReq(u, "GET", "/api/v1/qr?text=x&token="+u.Token, "")
			r.Header.Del("Authorization")
			if site != "" {
				r.Header.Set("Sec-Fetch-Site", site)
			}
			if rec := serve(u, r); rec.Code != want {
				t.Fatalf("status %d, want %d", rec.Code, want)
			}
		})
	}
}

func TestContentTypeOnPOST(t *testing.T) {
	_, gid, u := friendsUI(t)
	tests := []struct {
		contentType string
		want        int
	}{
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"", http.StatusUnsupportedMediaType},
		{"application/jsonx", http.StatusUnsupportedMediaType},
		{"application/json", http.StatusOK},
		{"application/json; charset=utf-8", http.StatusOK},
		{"Application/JSON", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r := newReq(u, "POST", "/api/v1/groups/"+gid+"/messages", `{"text":"hi"}`)
			r.Header.Set("Content-Type", tt.contentType)
			rec := serve(u, r)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.want, rec.Body.String())
			}
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	_, _, u := friendsUI(t)
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	tests := []struct {
		name string
		r    *http.Request
		code int
		api  bool
	}{
		{"index", newReq(u, "GET", "/", ""), 200, false},
		{"script", newReq(u, "GET", "/app.js", ""), 200, false},
		{"missing file", newReq(u, "GET", "/nope.js", ""), 404, false},
		{"status", newReq(u, "GET", "/api/v1/status", ""), 200, true},
		{"unknown route", newReq(u, "GET", "/api/v1/nope", ""), 404, true},
		{"unauthorized", func() *http.Request {
			r := newReq(u, "GET", "/api/v1/status", "")
			r.Header.Del("Authorization")
			return r
		}(), 401, true},
		{"forbidden host", func() *http.Request { r := newReq(u, "GET", "/", ""); r.Host = "evil.example"; return r }(), 403, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(u, tt.r)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d", rec.Code, tt.code)
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if cc := rec.Header().Get("Cache-Control"); tt.api && cc != "no-store" {
				t.Errorf("Cache-Control = %q on an API answer, want no-store", cc)
			}
		})
	}
}
