package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/demes/demes/crypto"
)

// Link carries a signed frame to a peer's URL and returns the peer's answer.
// The HTTP implementation is [HTTPLink]; tests use package simnet.
type Link interface {
	Post(ctx context.Context, url string, frame []byte) ([]byte, error)
}

// HTTPLink posts frames to peers over HTTP.
type HTTPLink struct {
	client *http.Client
}

// NewHTTPLink returns a link with request timeouts, so that a stalled peer
// costs its own queue a few seconds and nothing else: each request is cut
// after httpClientTimeout, or after the longer cap its context asks for
// (withLinkCap; a join request, which waits for a commit).
func NewHTTPLink() *HTTPLink {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     idleConnTimeout,
		DisableCompression:  true,
	}
	return &HTTPLink{client: &http.Client{Transport: tr}}
}

// linkCapKey is the context key of withLinkCap.
type linkCapKey struct{}

// withLinkCap asks the HTTP link to let a request of ctx run for up to d
// instead of httpClientTimeout: for a request whose answer waits on purpose
// (a join request waits for the join to commit), whose own deadline, under
// d, then decides. The libp2p link has no cap of its own: a request there
// runs until its context's deadline.
func withLinkCap(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, linkCapKey{}, d)
}

// linkCap is how long the HTTP link lets a request of ctx run.
func linkCap(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(linkCapKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return httpClientTimeout
}

// PeerPath is the peer listener's one route.
const PeerPath = "/v1/peer"

// Post implements Link.
func (l *HTTPLink) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	// The cap covers reading the answer too: the body is read before
	// Post returns.
	ctx, cancel := context.WithTimeout(ctx, linkCap(ctx))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(url, "/")+PeerPath, bytes.NewReader(frame))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, crypto.MaxFrame+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusConflict && len(body) > 0 {
		return nil, &behindError{notice: body}
	}
	if resp.StatusCode != http.StatusOK {
		var err error = answeredError{fmt.Errorf("peer %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))}
		switch {
		case resp.StatusCode == http.StatusForbidden:
			err = refusedError{err}
			if strings.TrimSpace(string(body)) == lostLogBody {
				err = lostLogError{err}
			}
		case resp.StatusCode == http.StatusServiceUnavailable && strings.TrimSpace(string(body)) == notCommittedBody:
			err = notCommittedError{err}
		case resp.StatusCode == http.StatusBadRequest:
			if jr := asJoinRefused(err, resp.StatusCode, body); jr != nil {
				err = jr
			}
		}
		return nil, err
	}
	return body, nil
}

// refusedError is a peer's refusal of a frame (HTTP 403): it checked the
// frame and does not take it, which sending it again will not change.
type refusedError struct{ error }

func (e refusedError) Unwrap() error { return e.error }

// behindError is a peer's refusal of a frame because it does not know its
// signer as a member: it was away, and it asks for the log it lacks with the
// signed behind notice it answers (HTTP 409 and the notice; see
// catchup.go).
type behindError struct{ notice []byte }

func (e *behindError) Error() string { return reasonAskedForLog }

// answeredError is any answer of a peer other than 200 OK: the peer is
// there, unlike a failure to connect or a timeout.
type answeredError struct{ error }

func (e answeredError) Unwrap() error { return e.error }

// unanswered reports whether err, from Link.Post, means that nobody
// answered: no connection, or no answer in time (over HTTP), a crashed
// node (on the simulated network).
func unanswered(err error) bool {
	var a answeredError
	return err != nil && !errors.As(err, &a) && !refused(err)
}

// refused reports whether err is a peer's refusal: over HTTP a 403, on the
// simulated network the handler's rejection itself.
func refused(err error) bool {
	var r refusedError
	var rj *errReject
	return errors.As(err, &r) || errors.As(err, &rj)
}

// CloseIdle closes idle connections (tests use it to avoid leaks).
func (l *HTTPLink) CloseIdle() { l.client.CloseIdleConnections() }

// goneErr reports whether err, from Link.Post, says that nothing listens at
// the peer's address any more: the connection was refused, so the peer's
// machine answered for it and its process is gone (a crashed endpoint on the
// simulated network says the same). A timeout is no such answer: a cut link
// gives one too, and a live host behind it keeps its lease.
func goneErr(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// SchemeLink sends each frame over the transport its URL names: "p2p:" URLs
// over P2P (package p2p's libp2p host), every other one over HTTP. A group
// may hold members of both kinds while it moves to libp2p: each member is
// reached at the URL it advertises.
type SchemeLink struct {
	HTTP Link
	// P2P is nil on a node that runs without libp2p: it cannot reach a
	// member that advertises only a p2p URL.
	P2P Link
}

// P2PScheme starts the URLs SchemeLink sends over P2P.
const P2PScheme = "p2p:"

// Post implements Link.
func (l SchemeLink) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	if !strings.HasPrefix(url, P2PScheme) {
		return l.HTTP.Post(ctx, url, frame)
	}
	if l.P2P == nil {
		return nil, fmt.Errorf("%.60s... is a libp2p address, and this node runs without libp2p: start demes serve with --p2p ADDR", url)
	}
	resp, err := l.P2P.Post(ctx, url, frame)
	var se interface {
		error
		StatusCode() int
		ResponseBody() []byte
	}
	if err == nil || !errors.As(err, &se) {
		return resp, err
	}
	// The same meaning as the HTTP link's answers.
	switch se.StatusCode() {
	case http.StatusConflict:
		if len(se.ResponseBody()) > 0 {
			return nil, &behindError{notice: se.ResponseBody()}
		}
	case http.StatusForbidden:
		if string(se.ResponseBody()) == lostLogBody {
			return nil, lostLogError{refusedError{answeredError{se}}}
		}
		return nil, refusedError{answeredError{se}}
	case http.StatusServiceUnavailable:
		if string(se.ResponseBody()) == notCommittedBody {
			return nil, notCommittedError{answeredError{se}}
		}
	case http.StatusBadRequest:
		if jr := asJoinRefused(answeredError{se}, se.StatusCode(), se.ResponseBody()); jr != nil {
			return nil, jr
		}
	}
	return nil, answeredError{se}
}
