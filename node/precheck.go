package node

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Checking a Ready's committed entries on every core (issue 16: a member
// that catches up on a long history). A member applies the entries it
// missed a raft append at a time, hundreds in one Ready, and each costs it
// two signature checks (the envelope's and the author's record's) and a
// decryption: on the group's goroutine alone, that held catch-up to one
// core. So, for a Ready with many committed entries, workers do the pure
// part of that work first, in two stages:
//
//  1. while the group's goroutine writes the Ready to disk: each entry's
//     envelope signature (remembered in verifiedFrames, as the entries
//     checked on arrival are), the chat body and the key it names, and
//     the key header of a message that carries one;
//  2. once the write is done, and while the group's goroutine applies
//     the entries in order: each chat message opened under the key the
//     group's goroutine found for it (its key ring, or a header of stage 1).
//
// Nothing is accepted on the workers' word. The state machine applies each
// entry as before (an envelope found in verifiedFrames was checked by
// crypto.Verify, or crypto.VerifyFrames, which answers the same, over
// exactly those bytes), and deliver uses a message opened ahead only when
// the key it resolves itself, in order, is that same key and the message
// the same bytes: crypto.OpenMessage (and crypto.OpenMessages, which the
// workers use to check the records' signatures together, and which answers
// the same for each message) is a pure function of those inputs, so the
// result is the one it would compute. A
// message that failed to open ahead is opened again in order, so its error
// is logged and counted exactly once, where it always was. The workers
// touch nothing the group's goroutine owns: they get the entries, the key
// ring's keys (which are never changed once made) and the node's identity
// and prekey secrets (guarded by keyBook's lock).

// minPrecheck is the fewest committed entries in a Ready that are checked
// ahead: a live group commits a few entries at a time, already checked as
// they arrived (verifiedFrames), where handing them to workers would only
// add a wait.
const minPrecheck = 32

// precheck is the work ahead on one Ready's committed entries.
type precheck struct {
	g       *group
	entries []*pb.Entry
	// slots[i] is for entries[i]; stage 1 fills them, then stage 2 the
	// opened message of each chat.
	slots []preSlot
	// stage1 is done when stage 1's workers are; next1 is the next entry
	// for stage 1.
	stage1 sync.WaitGroup
	next1  atomic.Int64
	// headers are the keys whose header stage 1 opens (guarded by mu).
	mu      sync.Mutex
	headers map[crypto.KeyRef]bool
}

// preSlot is what the workers found for one committed entry.
type preSlot struct {
	chat   bool
	sender [32]byte
	id     [16]byte
	sealed []byte
	ref    crypto.KeyRef
	// header is the sender key in the message's own key header, opened
	// as this node in stage 1, if it has one addressed here.
	header *crypto.SenderKey
	// key is the key stage 2 opens the message under (set by the group's
	// goroutine before stage 2 starts), opened the result when it passed
	// every check of crypto.OpenMessage. claimed is set by whoever takes
	// the slot first: a worker, which closes done once it is finished
	// with it, or the group's goroutine, which then opens the message
	// itself rather than wait for workers that the machine's other work
	// may hold up.
	key     *crypto.SenderKey
	opened  *crypto.Opened
	claimed atomic.Bool
	done    chan struct{}
}

// startPrecheck starts stage 1 on entries, or returns nil when they are
// too few to be worth it.
func (g *group) startPrecheck(entries []*pb.Entry) *precheck {
	if len(entries) < minPrecheck {
		return nil
	}
	p := &precheck{g: g, entries: entries, slots: make([]preSlot, len(entries))}
	workers := runtime.GOMAXPROCS(0)
	p.stage1.Add(workers)
	for range workers {
		go func() {
			defer p.stage1.Done()
			p.checkEntries()
		}()
	}
	return p
}

// precheckChunk is how many entries a worker takes at a time in stage 1:
// the envelope signatures of a chunk are checked together
// (crypto.VerifyFrames), which costs about half of checking them one
// by one (crypto.BenchmarkSignatureBatch).
const precheckChunk = 32

// checkEntries does stage 1 on the entries nobody took yet, a chunk at a
// time.
func (p *precheck) checkEntries() {
	for {
		lo := int(p.next1.Add(precheckChunk)) - precheckChunk
		if lo >= len(p.entries) {
			return
		}
		hi := min(lo+precheckChunk, len(p.entries))
		envs := p.g.n.verified.verify(p.entries[lo:hi])
		for i := lo; i < hi; i++ {
			if envs[i-lo] != nil {
				p.checkEntry(i, envs[i-lo])
			}
		}
	}
}

// checkEntry is the rest of stage 1 for entries[i], whose envelope env
// verified.
func (p *precheck) checkEntry(i int, env *crypto.Envelope) {
	if env.Type != crypto.TypeChat || env.Group != p.g.id || p.g.n.cfg.Keeper {
		return
	}
	var b state.ChatBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.ID) != 16 {
		return
	}
	info, err := crypto.ReadSealed(b.Sealed)
	if err != nil {
		return
	}
	s := &p.slots[i]
	s.chat, s.sender, s.id, s.sealed = true, env.Sender, [16]byte(b.ID), b.Sealed
	s.ref = crypto.KeyRef{Sender: env.Sender, Epoch: info.Epoch, ID: info.KeyID}
	// A message under a key new to the ring: its header is opened once
	// (every message sent before the key was committed carries it).
	if info.HasHeader() && env.Sender != p.g.n.self.Sign && p.firstHeader(s.ref) {
		if key, err := crypto.OpenSenderKeyWith(p.g.n.id, p.g.n.keys, p.g.id, b.Sealed, env.Sender); err == nil && key.Ref() == s.ref {
			s.header = key
		}
	}
}

// firstHeader reports whether ref is named for the first time by a header
// in stage 1.
func (p *precheck) firstHeader(ref crypto.KeyRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.headers[ref] {
		return false
	}
	if p.headers == nil {
		p.headers = map[crypto.KeyRef]bool{}
	}
	p.headers[ref] = true
	return true
}

// startOpening waits for stage 1, and starts stage 2: each chat message is
// opened under the key of its name in the group's key ring as it is now,
// else under the first key of that name that a header of these entries
// held. Only on the group's goroutine (it reads the ring).
func (p *precheck) startOpening() {
	p.checkEntries() // rather than wait idle for the workers
	p.stage1.Wait()
	headers := map[crypto.KeyRef]*crypto.SenderKey{}
	var todo []int
	for i := range p.slots {
		s := &p.slots[i]
		if !s.chat {
			continue
		}
		if s.header != nil && headers[s.ref] == nil {
			headers[s.ref] = s.header
		}
		if s.key = p.g.keys.Lookup(s.ref); s.key == nil {
			s.key = headers[s.ref]
		}
		if s.key != nil && p.g.ownOpened(&state.Chat{Sender: s.sender, ID: s.id, Sealed: s.sealed}, s.key) != nil {
			// This node sealed it, and knows what opening it gives
			// (ownOpened): checking its own signature again is a fifth
			// of a five-member group's record checks.
			s.key = nil
		}
		if s.key != nil {
			s.done = make(chan struct{})
			todo = append(todo, i)
			if s.sender == p.g.n.self.Sign {
				p.g.ownAhead++
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	var next atomic.Int64
	// In order, so that the group's goroutine, applying in order, finds
	// the next message opened; a chunk at a time, whose records'
	// signatures are checked together (crypto.OpenMessages answers for
	// each message what crypto.OpenMessage does).
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		go func() {
			var mine []*preSlot
			var batch []crypto.ToOpen
			for {
				lo, hi := openChunkAt(int(next.Add(1))-1, len(todo))
				if lo >= hi {
					return
				}
				mine = mine[:0]
				for _, i := range todo[lo:hi] {
					s := &p.slots[i]
					if s.claimed.Swap(true) {
						continue // the group's goroutine opens it
					}
					mine = append(mine, s)
				}
				batch = p.openSlots(mine, batch)
			}
		}()
	}
}

// openSlots opens the messages of slots, claimed by the caller, in one
// batch (their records' signatures checked together), and closes each
// slot's done. batch is scratch space, returned for reuse.
func (p *precheck) openSlots(slots []*preSlot, batch []crypto.ToOpen) []crypto.ToOpen {
	batch = batch[:0]
	for _, s := range slots {
		batch = append(batch, crypto.ToOpen{Key: s.key, Group: p.g.id, Sealed: s.sealed, Sender: s.sender, ID: s.id})
	}
	opened, errs := crypto.OpenMessages(batch)
	for j, s := range slots {
		if errs[j] == nil {
			s.opened = opened[j]
		}
		close(s.done)
	}
	return batch
}

// openChunk is how many messages a worker claims in stage 2's first
// chunk, and the group's goroutine at a time when it gets to messages no
// worker took: small, because the group's goroutine, applying in order,
// waits for the whole first chunk to be opened before it applies anything.
const openChunk = 16

// openChunkAt returns the bounds in todo (of n messages) of stage 2's
// chunk k: the first of openChunk messages, the others of up to
// crypto.BatchSize. Once the group's goroutine has the first chunk to
// apply, the rest are opened in equations as large as they come: a
// record's signature costs about 17 us in an equation of 16, 14 in one of
// 64, and 7 in one of 256 (crypto.BenchmarkSignatureBatch, where Pippenger's
// method takes over above 190 terms), and under load most committed
// messages reach this node in Readies of many.
func openChunkAt(k, n int) (lo, hi int) {
	if k == 0 {
		return 0, min(openChunk, n)
	}
	lo = min(openChunk+(k-1)*crypto.BatchSize, n)
	return lo, min(lo+crypto.BatchSize, n)
}

// opened returns the message c, the chat of the entry at index idx, as
// stage 2 opened it under key, or nil when it did not: another key, other
// bytes, or an error, which the caller then meets itself.
func (p *precheck) opened(idx uint64, key *crypto.SenderKey, c *state.Chat) *crypto.Opened {
	if p == nil || len(p.entries) == 0 || key == nil {
		return nil
	}
	i := idx - p.entries[0].GetIndex()
	if idx < p.entries[0].GetIndex() || i >= uint64(len(p.slots)) {
		return nil
	}
	s := &p.slots[i]
	if s.done == nil {
		return nil // not to be opened ahead
	}
	if !s.claimed.Swap(true) {
		// No worker got to it yet (the machine's other work may hold
		// them up): open it here, with the next ones no worker took
		// either, in one batch, rather than one at a time, each record's
		// signature checked alone (twice the cost, and the group's
		// goroutine got there first often enough to show in profiles).
		mine := []*preSlot{s}
		for j := int(i) + 1; j < len(p.slots) && len(mine) < openChunk; j++ {
			if t := &p.slots[j]; t.done != nil && !t.claimed.Swap(true) {
				mine = append(mine, t)
			}
		}
		p.openSlots(mine, nil)
	}
	<-s.done
	if s.opened == nil || !s.key.Equal(key) || s.sender != c.Sender || s.id != c.ID || !bytes.Equal(s.sealed, c.Sealed) {
		return nil
	}
	return s.opened
}
