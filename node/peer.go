package node

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
)

// peer is the sending side of the transport towards one peer URL: a bounded
// queue drained by one goroutine that batches everything waiting under one
// signature per group and request.
type peer struct {
	n   *Node
	url string
	// q holds pointers: a channel reserves its whole capacity at once,
	// and peerQueue messages of 72 bytes were 288 KB for each peer.
	q      chan *outMsg
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

// newPeer returns the sending side towards url, its goroutine not started.
func newPeer(n *Node, url string) *peer {
	return &peer{n: n, url: url, q: make(chan *outMsg, peerQueue), wake: make(chan struct{}, 1)}
}

func (n *Node) peerFor(url string) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[url]
	if p == nil && !n.closed {
		p = newPeer(n, url)
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
	if g.sendFilter != nil {
		msgs = filterSends(msgs, g.sendFilter)
	}
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
		case p.q <- &outMsg{g: g, to: key, m: data, id: m.GetTo()}:
		default:
			g.rn.ReportUnreachable(m.GetTo())
		}
	}
}

// postAsync posts frame to url from its own goroutine, within
// peerRequestTimeout, and hands the answer to done there, unless done is
// nil. The node waits for it when it stops.
func (g *group) postAsync(url string, frame []byte, done func(resp []byte, err error)) {
	g.n.wg.Add(1)
	go func() {
		defer g.n.wg.Done()
		ctx, cancel := context.WithTimeout(g.n.ctx, peerRequestTimeout)
		resp, err := g.n.cfg.Link.Post(ctx, url, frame)
		cancel()
		if done != nil {
			done(resp, err)
		}
	}()
}

// filterSends returns what filter keeps of msgs (tests only).
func filterSends(msgs []*pb.Message, filter func(*pb.Message) *pb.Message) []*pb.Message {
	var out []*pb.Message
	for _, m := range msgs {
		if m = filter(m); m != nil {
			out = append(out, m)
		}
	}
	return out
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
	if g.provUntil > 0 {
		// A chain checked while catching up is newer than the log
		// applied here (catchup.go): its addresses come first.
		for k, m := range g.provisional {
			if m.raftID == id {
				return k, viewMember{id: m.id, raftID: m.raftID, url: g.peerURL(k, m.url), voter: m.voter}, true
			}
		}
	}
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

func (p *peer) run() {
	backoff := time.Duration(0)
	var next *outMsg // taken from the queue, but over the last batch's bytes
	for {
		var first *outMsg
		if next != nil {
			first, next = next, nil
		} else {
			select {
			case <-p.n.ctx.Done():
				return
			case first = <-p.q:
			}
		}
		var batch []*outMsg
		batch, next = fillBatch(first, p.q)
		if err := p.send(batch); err != nil {
			gone := goneErr(err)
			for _, m := range batch {
				m.g.reportUnreachable(m.id)
				if gone {
					m.g.reportGone(m.to)
				}
			}
			if backoff == 0 {
				backoff = backoffMin
			} else if backoff < backoffMax {
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
func fillBatch(first *outMsg, q <-chan *outMsg) (batch []*outMsg, next *outMsg) {
	batch, size := []*outMsg{first}, len(first.m)
	for len(batch) < maxBatch {
		select {
		case m := <-q:
			if size+len(m.m) > maxBatchBytes {
				return batch, m
			}
			batch, size = append(batch, m), size+len(m.m)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// send signs one batch envelope per (group, recipient) and posts them.
func (p *peer) send(batch []*outMsg) error {
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
		ctx, cancel := context.WithTimeout(p.n.ctx, peerRequestTimeout)
		_, err = p.n.cfg.Link.Post(ctx, p.url, frame)
		cancel()
		var be *behindError
		if errors.As(err, &be) {
			// The peer was away and does not know this node yet: it
			// asks for the log, and raft sends again (no backoff: the
			// peer is there).
			p.n.onBehindAnswer(k.g, k.to, be)
			err = nil
		}
		if lostLog(err) {
			// This group's frame, to this member: not the others' in
			// the batch (lostlog.go).
			k.g.reportLostLog(k.to, heartbeatTerm(items[k]))
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
