package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestLostLogOnlyFromItsRefusal: over HTTP, only a 403 whose body is the
// refusal of a heartbeat committing beyond the log says the peer lost its
// log. A match anywhere in the error's text (the URL, another status, a
// longer body, which a proxy or a stale address could send) made its host
// hand over.
func TestLostLogOnlyFromItsRefusal(t *testing.T) {
	for _, tc := range []struct {
		code int
		body string
		want bool
	}{
		{http.StatusForbidden, lostLogBody, true},
		{http.StatusForbidden, lostLogBody + "\n", true},
		{http.StatusForbidden, "rejected", false},
		{http.StatusInternalServerError, lostLogBody, false},
		{http.StatusTooManyRequests, lostLogBody, false},
		{http.StatusForbidden, lostLogBody + ", and more", false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte(tc.body))
		}))
		_, err := NewHTTPLink().Post(context.Background(), srv.URL+"/"+reasonHeartbeatBeyondLog, []byte("frame"))
		srv.Close()
		if got := lostLog(err); got != tc.want {
			t.Errorf("%d %q: lostLog = %v, want %v (%v)", tc.code, tc.body, got, tc.want, err)
		}
		if tc.code == http.StatusForbidden && !refused(err) {
			t.Errorf("%d %q: not a refusal any more: %v", tc.code, tc.body, err)
		}
	}
}
