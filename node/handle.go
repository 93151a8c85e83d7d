package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// newPeerHandler serves the peer listener. What a stranger can make it do
// is bounded before any signature is checked: a request over the frame
// limit is refused by its length, one from an address that keeps failing is
// refused outright (limit.go), and one whose signer is no member's or
// invitee's key of any group here is refused after its first 33 bytes
// (checkSender), the rest unread.
func newPeerHandler(n *Node) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc(PeerPath, func(w http.ResponseWriter, req *http.Request) {
		code, resp, unread := n.serveFrame(req.Context(), sourceOf(req.RemoteAddr), req.ContentLength, req.Body)
		if unread {
			// The body is left unread: close the connection rather than
			// have the server read it to reuse the connection.
			w.Header().Set("Connection", "close")
		}
		if code == http.StatusOK || code == http.StatusConflict {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(code)
			w.Write(resp)
			return
		}
		http.Error(w, string(resp), code)
	}).Methods(http.MethodPost)
	r.HandleFunc(IDPath, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, n.selfID+"\n")
	}).Methods(http.MethodGet)
	r.HandleFunc(KeeperPath, n.handleKeeperOffer).Methods(http.MethodPost)
	r.HandleFunc(KeeperPath, n.handleKeeperProbe).Methods(http.MethodGet)
	return r
}

// ServeFrame answers one frame that came from src (the peer's address, or
// its libp2p peer id) over any transport: size is the frame's announced
// length (-1 when unknown), body its bytes. It returns the HTTP status code
// of the answer and its body, and whether it left part of the frame unread
// (refused by its first bytes: the caller must not reuse the connection).
// What a stranger can make it do is bounded before any signature is
// checked: a frame over the limit is refused by its length, one from a
// source that keeps failing is refused outright (limit.go), and one whose
// signer is no member's or invitee's key of any group here is refused after
// its first 33 bytes (checkSender), the rest unread.
func (n *Node) ServeFrame(ctx context.Context, src string, size int64, body io.Reader) (code int, resp []byte, unread bool) {
	return n.serveFrame(ctx, src, size, body)
}

func (n *Node) serveFrame(ctx context.Context, src string, size int64, body io.Reader) (int, []byte, bool) {
	limits, now := n.limits, time.Now()
	if !limits.allow(src, now) {
		n.countReject("source rate-limited", "too many failed requests from "+src)
		return http.StatusTooManyRequests, []byte("too many failed requests"), true
	}
	if size > crypto.MaxFrame {
		limits.charge(src, now)
		n.reject(nil, "oversized request", nil)
		return http.StatusRequestEntityTooLarge, []byte("request too large"), true
	}
	// The version and the signer first: enough to refuse a stranger.
	head := make([]byte, frameSignerEnd)
	k, err := io.ReadFull(body, head)
	if err == nil {
		if err := n.checkSender(head); err != nil {
			limits.charge(src, now)
			return http.StatusForbidden, []byte("rejected"), true
		}
		if n.closedSender([32]byte(head[1:frameSignerEnd]), size) {
			n.countReject(reasonClosed, "refused a large frame of a member over its quota, unread")
			return http.StatusTooManyRequests, []byte("over quota"), true
		}
	}
	capacity := int64(bytes.MinRead)
	if size > 0 {
		capacity = size + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, capacity))
	buf.Write(head[:k])
	if err == nil {
		_, err = buf.ReadFrom(io.LimitReader(body, crypto.MaxFrame+1-int64(k)))
	} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // a short frame: HandleFrame says what is wrong with it
	}
	if err != nil {
		return http.StatusBadRequest, []byte("cannot read request"), false
	}
	frame := buf.Bytes()
	if len(frame) > crypto.MaxFrame {
		limits.charge(src, now)
		n.reject(nil, "oversized request", nil)
		return http.StatusRequestEntityTooLarge, []byte("request too large"), true
	}
	n.fig.received.Add(uint64(len(frame)))
	resp, err := n.handleFrame(ctx, frame, true)
	var be *behindError
	if errors.As(err, &be) {
		n.fig.sent.Add(uint64(len(be.notice)))
		return http.StatusConflict, be.notice, false
	}
	var jr joinRefusedError
	if errors.As(err, &jr) {
		// A checked invitee's join, refused for what it says about
		// the joiner: it learns why (joinserve.go).
		return http.StatusBadRequest, jr.body(), false
	}
	if errors.Is(err, errNotCommitted) {
		// A checked invitee's join that could not commit in time: it
		// learns why (joinserve.go).
		return http.StatusServiceUnavailable, []byte(notCommittedBody), false
	}
	if err != nil {
		var rej *errReject
		if errors.As(err, &rej) && rej.anonymous {
			limits.charge(src, now)
		}
		// The peer learns only that it was rejected; the reason is in
		// our log, for the operator. Except that a heartbeat commits
		// beyond this node's log: its host, a member (the signature
		// checked), must learn that to let it catch up (lostlog.go).
		code := http.StatusForbidden
		if errors.Is(err, crypto.ErrMalformed) || errors.Is(err, crypto.ErrVersion) || errors.Is(err, crypto.ErrTooLarge) {
			code = http.StatusBadRequest
		}
		if rej != nil && rej.reason == reasonHeartbeatBeyondLog {
			return code, []byte(lostLogBody), false
		}
		return code, []byte("rejected"), false
	}
	n.fig.sent.Add(uint64(len(resp)))
	return http.StatusOK, resp, false
}

// reasonClosed is the reason a large frame of a member over its quota is
// refused unread (see closedFrameSize).
const reasonClosed = "large frame of a member over its quota"

// frameSignerEnd is where a frame's signer key ends: a frame is the version
// byte, the signer's 32-byte key, the signature and the body (see
// docs/PROTOCOL.md and crypto.Verify).
const frameSignerEnd = 1 + 32

// checkSender refuses a frame (or its first bytes) of the current version
// whose signer is no member, provisional member or invitee of any group on
// this node, before its signature is checked: such a frame would be
// refused after the check anyway, and checking it costs a hash of the whole
// frame. A frame too short to name a signer, or of another version, is
// left to crypto.Verify, which refuses it as cheaply with its reason.
func (n *Node) checkSender(frame []byte) error {
	if len(frame) < frameSignerEnd || frame[0] != crypto.Version {
		return nil
	}
	if k := [32]byte(frame[1:frameSignerEnd]); !n.knownSigner(k) {
		if n.admitStranger(k, time.Now()) {
			// Checked in full: this node may be behind (catchup.go).
			return nil
		}
		if n.joining.Load() > 0 {
			// Common and harmless while this node joins: the host may
			// send before the join reply arrives here. Counted, and
			// logged at debug only.
			n.rejects.add("sender is not a member")
			n.log.Debug().Msg("rejected a frame of a sender not known yet, while joining")
			return &errReject{reason: "sender is not a member", anonymous: true}
		}
		return n.rejectAnonymous("sender is not a member", nil)
	}
	return nil
}

// knownSigner reports whether k is a member, provisional member or invitee
// of a group on this node.
// Member reports whether signKey is a member's or an invitee's of one of
// the node's groups: the peers whose frames it wants (a libp2p host serves
// any other peer only a few streams at once) and relays for.
func (n *Node) Member(signKey [32]byte) bool { return n.knownSigner(signKey) }

func (n *Node) knownSigner(k [32]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, g := range n.groups {
		v := g.view.Load()
		if _, ok := v.members[k]; ok {
			return true
		}
		if _, ok := v.invites[k]; ok {
			return true
		}
	}
	return false
}

// errReject marks a rejection that HandleFrame has already logged.
type errReject struct {
	reason string
	err    error
	// anonymous is set when the frame was refused before its signer was
	// known to be anyone (see limit.go).
	anonymous bool
}

func (e *errReject) Error() string { return e.reason }

func (e *errReject) Unwrap() error { return e.err }

// reject counts a rejected envelope under its reason and logs it, once per
// reason and signer (then at most once a minute, with how many more; see
// rejectLog).
func (n *Node) reject(env *crypto.Envelope, reason string, err error) error {
	key := reason
	if env != nil {
		key += " " + shortKey(env.Sender)
	}
	n.rejects.add(reason)
	if ok, more := n.rejectLog.due(key, time.Now()); ok {
		ev := n.log.Warn().Str("reason", reason)
		if err != nil {
			ev = ev.AnErr("cause", err)
		}
		if env != nil {
			ev = ev.Str("sender", shortKey(env.Sender)).Str("type", env.Type.String()).Str("group", env.Group.String())
		}
		if more > 0 {
			ev = ev.Int64("more", more)
		}
		ev.Msg("rejected envelope")
	}
	return &errReject{reason: reason, err: err, anonymous: env == nil}
}

// rejectAnonymous is reject for a frame refused before its signature was
// checked.
func (n *Node) rejectAnonymous(reason string, err error) error { return n.reject(nil, reason, err) }

// countReject counts a refusal under reason and logs what, once a minute at
// most.
func (n *Node) countReject(reason, what string) {
	n.rejects.add(reason)
	if ok, more := n.rejectLog.due(reason, time.Now()); ok {
		n.log.Warn().Str("reason", reason).Int64("more", more).Msg(what)
	}
}

func reasonKey(err error) string {
	for _, e := range []error{crypto.ErrSignature, crypto.ErrMalformed, crypto.ErrVersion, crypto.ErrTooLarge, crypto.ErrReplay, crypto.ErrSkew, crypto.ErrNotRecipient, crypto.ErrAuthorMismatch, crypto.ErrWrongGroup} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 && strings.HasPrefix(s, "entry rejected") {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// HandleFrame checks and acts on one frame from a peer, and returns the
// answer to send back. Every check happens before anything acts, the
// cheapest first: that the signer is a member or invitee of some group here
// (checkSender), then the signature (over the exact bytes), group,
// recipient, replay window, membership in the group, and for raft messages
// that the signer owns the raft id it claims.
func (n *Node) HandleFrame(ctx context.Context, frame []byte) ([]byte, error) {
	return n.handleFrame(ctx, frame, false)
}

// handleFrame is HandleFrame; checked says that the peer handler has
// checked the frame's signer already (checkSender), which must happen once
// per frame: a stranger's frame is checked in full only now and then.
func (n *Node) handleFrame(ctx context.Context, frame []byte, checked bool) ([]byte, error) {
	// Strangers first, before the signature (unless the peer handler has
	// done this already; a frame may come from elsewhere), and members
	// over quota.
	if !checked {
		if err := n.checkSender(frame); err != nil {
			return nil, err
		}
	}
	if len(frame) > frameSignerEnd && n.closedSender([32]byte(frame[1:frameSignerEnd]), int64(len(frame))) {
		n.countReject(reasonClosed, "refused a large frame of a member over its quota, unread")
		return nil, &errReject{reason: reasonClosed}
	}
	env, err := crypto.Verify(frame)
	if err != nil {
		return nil, n.reject(nil, "bad envelope: "+reasonKey(err), err)
	}
	g := n.group(env.Group)
	if g == nil {
		// Common and harmless while this node joins: the leader may send
		// before the join reply arrives here. Logged at info, still counted.
		if ok, more := n.rejectLog.due("unknown group "+shortKey(env.Sender), time.Now()); ok {
			n.log.Info().Str("sender", shortKey(env.Sender)).Str("type", env.Type.String()).Str("group", env.Group.String()).Int64("more", more).Msg("rejected envelope for a group this node is not in")
		}
		n.rejects.add("unknown group")
		return nil, &errReject{reason: "unknown group"}
	}
	if env.To != ([32]byte{}) && env.To != n.self.Sign {
		return nil, n.reject(env, "addressed to another node", nil)
	}
	v := g.view.Load()
	switch env.Type {
	case crypto.TypeChallenge, crypto.TypeJoin:
		// Joiners are not members yet. Only invitees get this far (checked
		// in the handlers), through their own small replay filter, so that
		// strangers cannot crowd members out of the main one.
		// A current member may repeat a join whose answer it never got
		// (the change committed after the contacted member gave up
		// waiting): it is answered at once.
		if _, member := v.members[env.Sender]; !v.invited(env.Sender) && !member {
			return nil, n.reject(env, "join attempt without a committed invite", nil)
		}
		if err := n.joinReplay.Check(env, time.Now()); err != nil {
			return nil, n.reject(env, reasonKey(err), err)
		}
		if env.Type == crypto.TypeChallenge {
			return n.handleChallenge(g, env)
		}
		return n.handleJoin(ctx, g, env, frame)
	}
	sender, ok := v.members[env.Sender]
	if !ok {
		return n.fromStranger(ctx, g, env)
	}
	// The replay window is checked after membership, so that only members
	// occupy it.
	if err := n.replay.Check(env, time.Now()); err != nil {
		return nil, n.reject(env, reasonKey(err), err)
	}
	switch env.Type {
	case crypto.TypeBatch:
		items, err := crypto.DecodeBatch(env.Payload)
		if err != nil {
			return nil, n.reject(env, "malformed batch", err)
		}
		msgs := make([]*pb.Message, 0, len(items))
		ahead := make([]*pb.Message, 0, len(items))
		a := admission{view: v, self: g.n.self.Sign, raftID: g.raftID, sender: env.Sender, senderRaftID: sender.raftID, attested: g.attestedViews()}
		for _, it := range items {
			m := &pb.Message{}
			if err := proto.Unmarshal(it, m); err != nil {
				return nil, n.reject(env, "malformed raft message", err)
			}
			if m.GetType() == pb.MsgHeartbeat {
				a.lastIndex, a.lastIndexErr = g.storage.LastIndex()
			}
			if reason, err := admit(a, m); reason != "" {
				if reason == reasonLeaderNonVoter {
					// Refused, this node asks the voters for their views,
					// so that a real leader gets through on its next try
					// (attest.go).
					g.wantAttestations()
				}
				if reason == reasonHeartbeatBeyondLog {
					g.beyondLogHost.Store(m.GetFrom()) // restored.go
				}
				if reason == reasonVoteNonVoter {
					if ask := n.askPairForLog(g, v, env.Sender, m.GetFrom()); ask != nil {
						return nil, ask // restored.go
					}
				}
				return nil, n.reject(env, reason, err)
			}
			msgs = append(msgs, m)
			if m.GetType() != pb.MsgProp {
				ahead = append(ahead, m)
			}
		}
		if err := g.step(ctx, msgs); err != nil {
			return nil, err
		}
		// While the group writes them to disk, have the entries'
		// signatures checked off its goroutine (see verifiedFrames),
		// and answer the sender meanwhile. Proposals are checked once
		// the host took them (stepAll): it drops what would only be
		// rejected, unchecked.
		n.checkAhead(ahead)
		n.markOnline(sender.url)
		return nil, nil
	case crypto.TypeBehind:
		// A member pointed here by a reconnect (see Reconnect): push it
		// what it lacks, and say how far this node is.
		n.onBehind(g, env)
		return n.behindNotice(g, v, env.Sender)
	case crypto.TypeCatchUp:
		return n.takeCatchUp(ctx, g, env)
	case crypto.TypeTentative:
		n.markOnline(sender.url)
		return n.takeTentative(ctx, g, env)
	case crypto.TypeBlobGet:
		return n.serveBlob(g, env) // files_fetch.go
	case crypto.TypeSuccessor:
		return n.takeOffer(ctx, g, env) // reform.go
	case crypto.TypeAddress:
		var b state.AddressBody
		if err := state.Decode(env.Payload, &b); err != nil || b.URL == "" || len(b.URL) > maxPeerURL {
			return nil, n.reject(env, "malformed address announcement", err)
		}
		// A member can only redirect traffic meant for itself: not to
		// another member's peer id (peerurl.go).
		if !urlOf(env.Sender, b.URL) {
			return nil, n.reject(env, "address announcement names another peer", nil)
		}
		if err := g.do(ctx, func() { g.urlHint[env.Sender] = b.URL }); err != nil {
			return nil, err
		}
		return nil, nil
	case crypto.TypePing:
		nonce, kind, rv, x, err := decodePing(env.Payload)
		if err != nil || kind == pingKindPong {
			return nil, n.reject(env, "malformed ping", err)
		}
		if x.statement != nil {
			c, err := parseHeadClaim(g.id, env.Sender, x.statement)
			if err != nil {
				return nil, n.reject(env, "bad head statement", err)
			}
			g.noteHead(c)
		}
		if kind == pingKindPing {
			g.noteSuspicion(env.Sender, rv, x)
		}
		g.noteRead(env.Sender, x)
		g.notePair(env.Sender, x)
		n.markOnline(sender.url)
		// A bare nonce is echoed as it came (a node that sends one
		// expects exactly that back); a ping with the sender's raft view
		// is answered with ours.
		payload := nonce
		if kind == pingKindPing {
			g.noteAttestation(env.Sender, rv, x)
			rvOwn := g.ownView()
			payload = encodePing(nonce, pingKindPong, rvOwn, g.pingExtra(rvOwn, env.Sender))
		}
		return n.sign(&crypto.Envelope{Type: crypto.TypePong, Group: g.id, To: env.Sender, Payload: payload})
	}
	return nil, n.reject(env, "unexpected envelope type", nil)
}
