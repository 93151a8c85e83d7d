package node

import (
	"crypto/sha256"
	"sync"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
)

// verifiedFrames remembers the envelopes of log entries whose signatures
// were already checked, so that applying them does not check them again.
// Entries are checked as they arrive (a host's appends, a member's
// forwarded proposal), on the transport's goroutine while the group's
// goroutine writes them to disk, and this node's own entries are known when
// it signs them; applying an entry is on the group's critical path, where
// a signature check would hold up every entry behind it.
//
// The cache changes nothing about what is accepted: an entry found here was
// checked by crypto.Verify (or crypto.VerifyFrames, which answers the same)
// over exactly these bytes (the key is their hash), and one not found is
// checked when it is applied, as before.
type verifiedFrames struct {
	mu    sync.Mutex
	m     map[[32]byte]*crypto.Envelope
	bytes int
}

const (
	// Entries that never commit (a deposed host's tail) are never taken
	// out again; the cache forgets everything beyond these bounds.
	maxVerifiedFrames = 8192
	maxVerifiedBytes  = 32 << 20
)

func (c *verifiedFrames) add(frame []byte, env *crypto.Envelope) {
	c.addKey(sha256.Sum256(frame), len(frame), env)
}

func (c *verifiedFrames) addKey(k [32]byte, size int, env *crypto.Envelope) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerifiedFrames || c.bytes+size > maxVerifiedBytes {
		c.m, c.bytes = map[[32]byte]*crypto.Envelope{}, 0
	}
	if _, ok := c.m[k]; !ok {
		c.m[k] = env
		c.bytes += size
	}
}

// lookup returns the checked envelope of the frame whose hash is k, without
// forgetting it, or nil.
func (c *verifiedFrames) lookup(k [32]byte) *crypto.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// take returns the checked envelope of frame and forgets it, or nil when
// frame was not checked ahead.
func (c *verifiedFrames) take(frame []byte) *crypto.Envelope {
	k := sha256.Sum256(frame)
	c.mu.Lock()
	defer c.mu.Unlock()
	env, ok := c.m[k]
	if ok {
		delete(c.m, k)
		c.bytes -= len(frame)
	}
	return env
}

// checkAhead hands the normal entries that msgs carry (appends from the
// host, proposals forwarded to it) to the node's checking goroutine, unless
// it is too far behind: entries not checked ahead are checked when applied.
func (n *Node) checkAhead(msgs []*pb.Message) {
	for _, m := range msgs {
		if t := m.GetType(); (t == pb.MsgApp || t == pb.MsgProp) && len(m.GetEntries()) > 0 {
			select {
			case n.checkc <- msgs:
			default:
			}
			return
		}
	}
}

// checkEntries checks the signatures of the entries handed to checkAhead and
// remembers the envelopes of those that pass. A failing one is left for the
// state machine, which rejects it with its reason when it is applied.
//
// It takes every batch of messages waiting at once (up to
// maxCheckTogether entries) and checks them in one crypto.VerifyFrames:
// under load each append or forwarded proposal carries only a few entries,
// and fewer than the batch equation's minimum are checked one by one, at
// about twice the cost a signature of a larger equation.
func (n *Node) checkEntries() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case msgs := <-n.checkc:
			n.verified.check(drainChecks(msgs, n.checkc))
		}
	}
}

// maxCheckTogether bounds the entries drainChecks gathers for one check, so
// that the first of them does not wait long for the last.
const maxCheckTogether = 2 * crypto.BatchSize

// drainChecks returns msgs followed by the messages waiting in c, taken
// without blocking until c is empty or they carry maxCheckTogether entries.
func drainChecks(msgs []*pb.Message, c <-chan []*pb.Message) []*pb.Message {
	entries := countEntries(msgs)
	for entries < maxCheckTogether {
		select {
		case more := <-c:
			msgs = append(msgs[:len(msgs):len(msgs)], more...)
			entries += countEntries(more)
		default:
			return msgs
		}
	}
	return msgs
}

func countEntries(msgs []*pb.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.GetEntries())
	}
	return n
}

// check checks the signatures of the normal entries msgs carry and
// remembers the envelopes of those that pass, all together: a host's
// append carries many entries.
func (c *verifiedFrames) check(msgs []*pb.Message) {
	var entries []*pb.Entry
	for _, m := range msgs {
		entries = append(entries, m.GetEntries()...)
	}
	c.verify(entries)
}

// verify returns the envelope of each normal entry that verifies (nil for
// the others, and for entries that are not normal ones): the one
// remembered, or checked now and remembered. The signatures not checked
// before are checked together: crypto.VerifyFrames answers for each frame
// what crypto.Verify does.
func (c *verifiedFrames) verify(entries []*pb.Entry) []*crypto.Envelope {
	envs := make([]*crypto.Envelope, len(entries))
	var frames [][]byte
	var at []int
	var keys [][32]byte
	for i, e := range entries {
		data := e.GetData()
		if e.GetType() != pb.EntryNormal || len(data) == 0 {
			continue
		}
		k := sha256.Sum256(data)
		if envs[i] = c.lookup(k); envs[i] == nil {
			frames, at, keys = append(frames, data), append(at, i), append(keys, k)
		}
	}
	if len(frames) == 0 {
		return envs
	}
	checked, errs := crypto.VerifyFrames(frames)
	for j, i := range at {
		if errs[j] != nil {
			continue // for the state machine to reject, with its reason
		}
		envs[i] = checked[j]
		c.addKey(keys[j], len(frames[j]), checked[j])
	}
	return envs
}
