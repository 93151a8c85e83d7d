package node

import (
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

// newPeerHandler serves the peer listener.
func newPeerHandler(n *Node) http.Handler {
	r := mux.NewRouter()
	r.HandleFunc(PeerPath, func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, crypto.MaxFrame+1))
		if err != nil {
			http.Error(w, "cannot read request", http.StatusBadRequest)
			return
		}
		if len(body) > crypto.MaxFrame {
			n.reject(nil, "oversized request", nil)
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		resp, err := n.HandleFrame(req.Context(), body)
		if err != nil {
			// The peer learns only that it was rejected; the reason is in
			// our log, for the operator.
			code := http.StatusForbidden
			if errors.Is(err, crypto.ErrMalformed) || errors.Is(err, crypto.ErrVersion) || errors.Is(err, crypto.ErrTooLarge) {
				code = http.StatusBadRequest
			}
			http.Error(w, "rejected", code)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(resp)
	}).Methods(http.MethodPost)
	return r
}

// errReject marks a rejection that HandleFrame has already logged.
type errReject struct {
	reason string
	err    error
}

func (e *errReject) Error() string { return e.reason }

func (e *errReject) Unwrap() error { return e.err }

// reject logs a rejected envelope once, with its reason, and counts it.
func (n *Node) reject(env *crypto.Envelope, reason string, err error) error {
	ev := n.log.Warn().Str("reason", reason)
	if err != nil {
		ev = ev.AnErr("cause", err)
	}
	if env != nil {
		ev = ev.Str("sender", shortKey(env.Sender)).Str("type", env.Type.String()).Str("group", env.Group.String())
	}
	ev.Msg("rejected envelope")
	n.rejects.add(reason)
	return &errReject{reason: reason, err: err}
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
// answer to send back. Every check happens before anything acts: signature
// (over the exact bytes), group, recipient, replay window, membership, and
// for raft messages that the signer owns the raft id it claims.
func (n *Node) HandleFrame(ctx context.Context, frame []byte) ([]byte, error) {
	env, err := crypto.Verify(frame)
	if err != nil {
		return nil, n.reject(nil, "bad envelope: "+reasonKey(err), err)
	}
	g := n.group(env.Group)
	if g == nil {
		// Common and harmless while this node joins: the leader may send
		// before the join reply arrives here. Logged at info, still counted.
		n.log.Info().Str("sender", shortKey(env.Sender)).Str("type", env.Type.String()).Str("group", env.Group.String()).Msg("rejected envelope for a group this node is not in")
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
		return nil, n.reject(env, "sender is not a member", nil)
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
				return nil, n.reject(env, reason, err)
			}
			msgs = append(msgs, m)
		}
		if err := g.step(ctx, msgs); err != nil {
			return nil, err
		}
		// While the group writes them to disk, have the entries'
		// signatures checked off its goroutine (see verifiedFrames),
		// and answer the sender meanwhile.
		n.checkAhead(msgs)
		n.markOnline(sender.url)
		return nil, nil
	case crypto.TypeAddress:
		var b state.AddressBody
		if err := state.Decode(env.Payload, &b); err != nil || b.URL == "" || len(b.URL) > 512 {
			return nil, n.reject(env, "malformed address announcement", err)
		}
		// A member can only redirect traffic meant for itself.
		if err := g.do(ctx, func() { g.urlHint[env.Sender] = b.URL }); err != nil {
			return nil, err
		}
		return nil, nil
	case crypto.TypePing:
		nonce, kind, rv, err := decodePing(env.Payload)
		if err != nil || kind == pingKindPong {
			return nil, n.reject(env, "malformed ping", err)
		}
		n.markOnline(sender.url)
		// A bare nonce is echoed as it came (a node that sends one
		// expects exactly that back); a ping with the sender's raft view
		// is answered with ours.
		payload := nonce
		if kind == pingKindPing {
			g.noteAttestation(env.Sender, rv)
			payload = encodePing(nonce, pingKindPong, g.ownView())
		}
		return n.sign(&crypto.Envelope{Type: crypto.TypePong, Group: g.id, To: env.Sender, Payload: payload})
	}
	return nil, n.reject(env, "unexpected envelope type", nil)
}
