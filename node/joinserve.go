package node

// The member's side of a join: the challenge it answers an invitee with,
// and the join it proposes for it (join.go has the joiner's side).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
	"github.com/demes/demes/state"
)

// handleChallenge answers an invitee's first contact with a fresh nonce it
// must sign in its join request.
func (n *Node) handleChallenge(g *group, env *crypto.Envelope) ([]byte, error) {
	v := g.view.Load()
	if !v.self {
		return nil, n.reject(env, "join challenge to a non-member", nil)
	}
	if _, member := v.members[env.Sender]; !v.invited(env.Sender) && !member {
		return nil, n.reject(env, "join challenge without a committed invite", nil)
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	n.mu.Lock()
	now := time.Now()
	for k, ni := range n.nonces {
		if now.After(ni.expires) {
			delete(n.nonces, k)
		}
	}
	if len(n.nonces) > 1024 {
		n.mu.Unlock()
		return nil, n.reject(env, "too many pending joins", nil)
	}
	n.nonces[hex.EncodeToString(nonce)] = nonceInfo{joiner: env.Sender, group: g.id, expires: now.Add(challengeLifetime)}
	n.mu.Unlock()
	return n.sign(&crypto.Envelope{Type: crypto.TypeChallenge, Group: g.id, To: env.Sender, Payload: nonce})
}

// notCommittedBody is what a member answers a join request it took and
// could not commit within joinCommitTimeout (the group cannot commit: most
// of its voters offline): HTTP 503, or a libp2p answer 503, with this body
// exactly. The joiner, whose signature and invite the member checked, learns
// why, and says so to the person joining.
const notCommittedBody = "join not committed in time: the group cannot commit now"

// errNotCommitted is handleJoin's error for notCommittedBody.
var errNotCommitted = errors.New(notCommittedBody)

// notCommittedError is a member's answer notCommittedBody, as the HTTP and
// libp2p links return it.
type notCommittedError struct{ error }

func (e notCommittedError) Unwrap() error { return e.error }

// notCommitted reports whether err, from Link.Post of a join request, is a
// member's answer that it could not commit the join in time (on the
// simulated network, handleJoin's own error).
func notCommitted(err error) bool {
	return errors.As(err, new(notCommittedError)) || errors.Is(err, errNotCommitted)
}

// joinRefusedPrefix starts what a member answers (HTTP 400, or a libp2p
// answer 400) to a checked join request it refuses for what the joiner says
// about itself (its display name, its URL); the rest says why. Asking again
// would not change it.
const joinRefusedPrefix = "join refused: "

// joinRefusedError is such a refusal: handleJoin's error, and the answer
// as the HTTP and libp2p links return it. why is the reason, for the
// person joining.
type joinRefusedError struct {
	error
	why string
}

func (e joinRefusedError) Unwrap() error { return e.error }

// body is the answer's body.
func (e joinRefusedError) body() []byte { return []byte(joinRefusedPrefix + e.why) }

// asJoinRefused returns the joinRefusedError of an answer with status code
// and body, or nil for any other answer.
func asJoinRefused(err error, code int, body []byte) error {
	why, ok := strings.CutPrefix(strings.TrimSpace(string(body)), joinRefusedPrefix)
	if code != http.StatusBadRequest || !ok {
		return nil
	}
	return joinRefusedError{err, why}
}

// joinKey names a joiner's join in a group (Node.proposing).
type joinKey struct {
	group  crypto.GroupID
	joiner [32]byte
}

// handleJoin checks a signed join request and proposes the joiner as a
// learner; the join envelope itself goes into the log as the change's
// authorisation, where every member checks it again.
func (n *Node) handleJoin(ctx context.Context, g *group, env *crypto.Envelope, frame []byte) ([]byte, error) {
	var b state.JoinBody
	if err := state.Decode(env.Payload, &b); err != nil {
		return nil, n.reject(env, "malformed join request", err)
	}
	key := hex.EncodeToString(b.Nonce)
	n.mu.Lock()
	ni, ok := n.nonces[key]
	if ok && ni.joiner == env.Sender && ni.group == g.id && time.Now().Before(ni.expires) {
		delete(n.nonces, key)
	} else {
		ok = false
	}
	n.mu.Unlock()
	if !ok {
		return nil, n.reject(env, "join request without a valid challenge", nil)
	}
	joiner, err := identity.PublicIDFromBytes(b.PublicID)
	if err != nil || joiner.Sign != env.Sender || b.RaftID != state.RaftID(env.Sender) {
		return nil, n.reject(env, "join request with a wrong identity", err)
	}
	if _, member := g.view.Load().members[env.Sender]; !g.view.Load().invited(env.Sender) && !member {
		return nil, n.reject(env, "join request without a committed invite", nil)
	}
	// What the joiner says about itself goes into every member's list:
	// refused, before anything is proposed, where it could not be a
	// display name or a peer URL (the state machine's own rules are
	// laxer, and an entry it takes stays in the log for good).
	if err := keys.CheckName(b.Name); err != nil {
		return nil, joinRefusedError{n.reject(env, "join request with a bad display name", err), "the display name " + strings.TrimPrefix(err.Error(), "the name ")}
	}
	if len(b.URL) > maxPeerURL {
		return nil, joinRefusedError{n.reject(env, "join request with an oversized URL", nil),
			fmt.Sprintf("the peer URL is %d bytes, at most %d fit", len(b.URL), maxPeerURL)}
	}
	// The joiner's request waits longer than this (joinRequestTimeout),
	// so that it gets this member's answer: committed, or not in time.
	// A joiner that goes away first cancels ctx, and this member stops
	// waiting and proposing for it.
	joinerCtx := ctx
	ctx, cancel := context.WithTimeout(ctx, joinCommitTimeout)
	defer cancel()
	// One request of a joiner's at a time proposes its join, the others
	// wait for it: each proposal is charged to this member's allowance at
	// the host (controlgate.go), and a joiner sending many requests at
	// once would spend it (adversary.TestInviteeCannotSpendAMembersAllowance).
	me, jk := new(int), joinKey{group: g.id, joiner: env.Sender}
	defer func() {
		n.mu.Lock()
		if n.proposing[jk] == me {
			delete(n.proposing, jk)
		}
		n.mu.Unlock()
	}()
	for {
		v := g.view.Load()
		if _, member := v.members[env.Sender]; member {
			break
		}
		if !v.invited(env.Sender) {
			return nil, n.reject(env, "join rejected by the group", nil)
		}
		n.mu.Lock()
		if p := n.proposing[jk]; p == nil {
			n.proposing[jk] = me
		}
		proposes := n.proposing[jk] == me
		n.mu.Unlock()
		if proposes {
			// Past the deadline, or with the joiner gone, the checks
			// below answer.
			if err := g.do(ctx, func() { _ = g.proposeConfFrame(frame, pb.ConfChangeAddLearnerNode, b.RaftID) }); err != nil && ctx.Err() == nil {
				return nil, err
			}
		}
		wctx, wcancel := context.WithTimeout(ctx, reproposeAfter)
		_ = g.waitView(wctx, func(v *view) bool { _, ok := v.members[env.Sender]; return ok })
		wcancel()
		if joinerCtx.Err() != nil {
			n.log.Debug().Str("joiner", shortKey(env.Sender)).Msg("joiner went away before its join committed")
			return nil, fmt.Errorf("join request abandoned by the joiner: %w", joinerCtx.Err())
		}
		if ctx.Err() != nil {
			n.log.Info().Str("joiner", shortKey(env.Sender)).Str("group", g.id.String()).Dur("waited", joinCommitTimeout).
				Msg("join not committed in time: the group cannot commit now")
			return nil, errNotCommitted
		}
	}
	v := g.view.Load()
	r := joinReply{Name: v.name, Commit: v.applied}
	for _, m := range v.members {
		r.Members = append(r.Members, replyMember{PublicID: m.id.Bytes(), URL: m.url, Voter: m.voter})
	}
	payload, err := state.Encode(&r)
	if err != nil {
		return nil, err
	}
	return n.sign(&crypto.Envelope{Type: crypto.TypeJoinReply, Group: g.id, To: env.Sender, Payload: payload})
}
