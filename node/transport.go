package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// HTTPLink posts frames to peers over HTTP.
type HTTPLink struct {
	client *http.Client
}

// NewHTTPLink returns a link with request timeouts, so that a stalled peer
// costs its own queue a few seconds and nothing else.
func NewHTTPLink() *HTTPLink {
	tr := &http.Transport{
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &HTTPLink{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// PeerPath is the peer listener's one route.
const PeerPath = "/v1/peer"

// Post implements Link.
func (l *HTTPLink) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
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
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peer %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// CloseIdle closes idle connections (tests use it to avoid leaks).
func (l *HTTPLink) CloseIdle() { l.client.CloseIdleConnections() }

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
		if _, member := v.members[env.Sender]; !v.invites[env.Sender] && !member {
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
		for _, it := range items {
			m := &pb.Message{}
			if err := proto.Unmarshal(it, m); err != nil {
				return nil, n.reject(env, "malformed raft message", err)
			}
			if m.GetFrom() != sender.raftID {
				return nil, n.reject(env, "raft id not owned by the signer", nil)
			}
			if m.GetTo() != g.raftID {
				return nil, n.reject(env, "raft message for another node", nil)
			}
			switch m.GetType() {
			case pb.MsgVote, pb.MsgPreVote, pb.MsgTimeoutNow:
				// Only voters campaign, and only the leader (a voter)
				// sends MsgTimeoutNow. A joiner too counts only the
				// voters of its provisional list: its own vote does not
				// count anywhere yet, and a vote at a higher term from a
				// learner would move its term.
				if !v.countsAsVoter(env.Sender) {
					return nil, n.reject(env, "vote from a non-voter", nil)
				}
				// raft ignores a vote from an older term, so refusing it
				// changes nothing but the log; and it would take a vote
				// without a term for a local message.
				if m.GetTerm() == 0 || (m.GetType() == pb.MsgVote && m.GetTerm() < v.term) {
					return nil, n.reject(env, "stale-term vote", nil)
				}
			case pb.MsgProp:
				// Followers forward their proposals to the host; raft
				// panics on an empty one or on a configuration change it
				// cannot decode.
				if err := checkProposal(m); err != nil {
					return nil, n.reject(env, "malformed proposal", err)
				}
			case pb.MsgApp, pb.MsgAppResp, pb.MsgVoteResp, pb.MsgPreVoteResp, pb.MsgHeartbeat, pb.MsgHeartbeatResp:
				// Only proposals travel without a term; raft would take
				// anything else without one for a local message.
				if m.GetTerm() == 0 {
					return nil, n.reject(env, "raft message without a term", nil)
				}
				switch m.GetType() {
				case pb.MsgApp, pb.MsgHeartbeat:
					// raft follows whoever sends these at a higher term
					// (and takes its entries): only a leader may, and a
					// leader is a voter, or one a voter vouches for while
					// this node has not applied its promotion yet
					// (attest.go). Refused, this node asks the voters for
					// their views, so that a real leader gets through on
					// its next try.
					if !g.leaderAllowed(v, env, m.GetFrom(), m.GetTerm()) {
						g.wantAttestations()
						return nil, n.reject(env, "leader message from a non-voter", nil)
					}
				default:
					// Any message at a higher term makes raft step down
					// to that term, a leader included. Learners answer
					// only the leader, at its term; a response at a
					// higher term from one can only depose the host.
					// (An honest learner answers a leader of an older
					// term that way, to hurry its step-down; the voters'
					// answers and CheckQuorum see to that anyway.)
					if !v.countsAsVoter(env.Sender) && m.GetTerm() > v.term {
						return nil, n.reject(env, "higher term from a non-voter", nil)
					}
				}
				// raft panics when a heartbeat commits beyond its log. An
				// honest host never sends one: it commits at most what
				// this node acknowledged, which is on disk and so in
				// storage.
				if last, err := g.storage.LastIndex(); m.GetType() == pb.MsgHeartbeat && (err != nil || m.GetCommit() > last) {
					return nil, n.reject(env, "heartbeat commits beyond the log", err)
				}
			default:
				// Local-only types, snapshots, read-index and leadership
				// transfer requests: DeMeS sends none of them between
				// nodes, so a peer has no business sending them.
				return nil, n.reject(env, "raft message type not accepted from peers", nil)
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

// checkProposal accepts a forwarded proposal only in the shape DeMeS makes:
// at least one entry, each a normal entry or a configuration change with
// exactly one change (what proposeConfFrame builds). raft itself panics on an
// empty proposal or an undecodable configuration change.
func checkProposal(m *pb.Message) error {
	if len(m.GetEntries()) == 0 {
		return errors.New("no entries")
	}
	for _, e := range m.GetEntries() {
		switch e.GetType() {
		case pb.EntryNormal:
		case pb.EntryConfChangeV2:
			cc := &pb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), cc); err != nil {
				return fmt.Errorf("configuration change: %w", err)
			}
			if len(cc.GetChanges()) != 1 || cc.GetTransition() != pb.ConfChangeTransitionAuto {
				return errors.New("configuration change of another shape than one single change")
			}
		default:
			return fmt.Errorf("entry of type %v", e.GetType())
		}
	}
	return nil
}

// peer is the sending side of the transport towards one peer URL: a bounded
// queue drained by one goroutine that batches everything waiting under one
// signature per group and request.
type peer struct {
	n      *Node
	url    string
	q      chan outMsg
	online atomic.Int64 // unix nanos of the last successful exchange
	// wake cuts a backoff short: the peer just sent us something, so it
	// is up again (a restarted member should not wait out a backoff
	// grown while it was down before the host's heartbeats reach it).
	wake chan struct{}
}

type outMsg struct {
	g  *group
	to [32]byte
	m  []byte
	id uint64
}

const peerQueue = 4096

func (n *Node) peerFor(url string) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[url]
	if p == nil && !n.closed {
		p = &peer{n: n, url: url, q: make(chan outMsg, peerQueue), wake: make(chan struct{}, 1)}
		n.peers[url] = p
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			p.run()
		}()
	}
	return p
}

func (n *Node) markOnline(url string) {
	n.mu.Lock()
	p := n.peers[url]
	n.mu.Unlock()
	if p != nil {
		p.online.Store(time.Now().UnixNano())
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// sendRaft queues raft messages for their peers. It never blocks: a full
// queue drops the message, and raft sends it again.
func (g *group) sendRaft(msgs []*pb.Message) {
	for _, m := range coalesce(msgs, maxAppendBytes) {
		key, vm, ok := g.memberByRaft(m.GetTo())
		if !ok || vm.url == "" {
			continue
		}
		data, err := proto.Marshal(m)
		if err != nil {
			continue
		}
		p := g.n.peerFor(vm.url)
		if p == nil {
			return
		}
		select {
		case p.q <- outMsg{g: g, to: key, m: data, id: m.GetTo()}:
		default:
			g.rn.ReportUnreachable(m.GetTo())
		}
	}
}

// reportUnreachable tells the group's raft, from a peer queue's goroutine,
// that a message to member id was lost, so that the host probes it instead
// of streaming appends into the void. A full channel drops the report: the
// next failure reports again.
func (g *group) reportUnreachable(id uint64) {
	select {
	case g.unreachc <- id:
	default:
	}
}

func (g *group) memberByRaft(id uint64) ([32]byte, viewMember, bool) {
	for k, m := range g.st.Members {
		if m.RaftID == id {
			return k, viewMember{id: m.ID, raftID: m.RaftID, url: g.peerURL(k, m.URL), voter: m.Voter}, true
		}
	}
	for k, m := range g.provisional {
		if m.raftID == id {
			return k, m, true
		}
	}
	return [32]byte{}, viewMember{}, false
}

// A request carries at most maxBatch messages and, unless a single message
// is larger, maxBatchBytes of them, well under the receiver's limit
// (crypto.MaxFrame): a member catching up gets appends of up to
// maxAppendBytes each, and a batch of them over the limit would be refused
// every time it was sent again.
const (
	maxBatch      = 512
	maxBatchBytes = 4 << 20
)

func (p *peer) run() {
	backoff := time.Duration(0)
	var next *outMsg // taken from the queue, but over the last batch's bytes
	for {
		var first outMsg
		if next != nil {
			first, next = *next, nil
		} else {
			select {
			case <-p.n.ctx.Done():
				return
			case first = <-p.q:
			}
		}
		var batch []outMsg
		batch, next = fillBatch(first, p.q)
		if err := p.send(batch); err != nil {
			for _, m := range batch {
				m.g.reportUnreachable(m.id)
			}
			if backoff == 0 {
				backoff = 20 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			p.n.log.Debug().Err(err).Str("peer", p.url).Dur("backoff", backoff).Msg("peer unreachable")
			select {
			case <-p.wake: // from before the failure: stale
			default:
			}
			t := time.NewTimer(backoff)
			select {
			case <-p.n.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-p.wake:
				t.Stop()
				backoff = 0
			}
			continue
		}
		backoff = 0
		p.online.Store(time.Now().UnixNano())
	}
}

// fillBatch returns first and what else is waiting in q, up to maxBatch
// messages and maxBatchBytes (first alone may be larger), and the message it
// took from q that did not fit, if any: it goes first in the next batch.
func fillBatch(first outMsg, q <-chan outMsg) (batch []outMsg, next *outMsg) {
	batch, size := []outMsg{first}, len(first.m)
	for len(batch) < maxBatch {
		select {
		case m := <-q:
			if size+len(m.m) > maxBatchBytes {
				return batch, &m
			}
			batch, size = append(batch, m), size+len(m.m)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// send signs one batch envelope per (group, recipient) and posts them.
func (p *peer) send(batch []outMsg) error {
	type key struct {
		g  *group
		to [32]byte
	}
	var order []key
	items := map[key][][]byte{}
	for _, m := range batch {
		k := key{m.g, m.to}
		if _, ok := items[k]; !ok {
			order = append(order, k)
		}
		items[k] = append(items[k], m.m)
	}
	var firstErr error
	for _, k := range order {
		payload, err := crypto.EncodeBatch(items[k])
		if err != nil {
			return err
		}
		frame, err := p.n.sign(&crypto.Envelope{Type: crypto.TypeBatch, Group: k.g.id, To: k.to, Payload: payload})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(p.n.ctx, 2*time.Second)
		_, err = p.n.cfg.Link.Post(ctx, p.url, frame)
		cancel()
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// step hands a batch of a peer's raft messages to the group's goroutine,
// which owns raft, and waits until it takes them (backpressure on the
// sender, as etcd's rafthttp has through Raft.Process).
func (g *group) step(ctx context.Context, msgs []*pb.Message) error {
	select {
	case g.stepc <- msgs:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopc:
		return fmt.Errorf("group %s: %w", g.id, ErrStopped)
	}
}

// raftLogger routes raft's logs to zerolog at debug level (raft is chatty).
type raftLogger struct{ l zerolog.Logger }

func (r raftLogger) Debug(v ...any)                 {}
func (r raftLogger) Debugf(format string, v ...any) {}
func (r raftLogger) Info(v ...any)                  { r.l.Debug().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug().Msgf(format, v...) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn().Msgf(format, v...)
}
func (r raftLogger) Error(v ...any)                 { r.l.Error().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error().Msgf(format, v...) }
func (r raftLogger) Fatal(v ...any)                 { r.l.Fatal().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { r.l.Fatal().Msgf(format, v...) }
func (r raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }

var _ sync.Locker = (*sync.Mutex)(nil)
