package transcript

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// chunk is how many entries one job checks: large enough that handing out
// jobs costs nothing next to the signatures and that a job's signatures
// make one equation of the largest, cheapest size (crypto.BatchSize), small
// enough that the replay, which follows the jobs in order, never waits long
// for the next one.
const chunk = crypto.BatchSize

// pool runs jobs on every core. Workers take the jobs in order, so a caller
// that consumes the results in the same order waits only for the job at the
// head of the line, while the others are already being done.
type pool struct {
	done []chan struct{}
	stop atomic.Bool
	wg   sync.WaitGroup
}

func startPool(jobs []func()) *pool {
	p := &pool{done: make([]chan struct{}, len(jobs))}
	for i := range p.done {
		p.done[i] = make(chan struct{})
	}
	var next atomic.Int64
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(jobs) || p.stop.Load() {
					return
				}
				jobs[j]()
				close(p.done[j])
			}
		}()
	}
	return p
}

// wait waits for job j. It must not be called after close.
func (p *pool) wait(j int) { <-p.done[j] }

// finish waits for every job.
func (p *pool) finish() { p.wg.Wait() }

// close stops handing out jobs and waits for the running ones, so that no
// goroutine outlives the call that started the pool.
func (p *pool) close() {
	p.stop.Store(true)
	p.wg.Wait()
}

// checked is an entry's frame with the result of crypto.Verify on it.
type checked struct {
	frame []byte
	env   *crypto.Envelope
	verr  error
	derr  error // the frame's base64 did not decode
}

// verifyJobs returns the jobs that fill out[i] for every entry: decode (when
// raw is set, from base64) and verify the frame, the signatures of a job's
// frames together (crypto.VerifyFrames, which answers for each frame what
// crypto.Verify does). Job k covers entries [k*chunk, (k+1)*chunk).
func verifyJobs(out []checked, frames [][]byte, raw bool) []func() {
	var jobs []func()
	for lo := 0; lo < len(out); lo += chunk {
		hi := min(lo+chunk, len(out))
		jobs = append(jobs, func() {
			batch := make([][]byte, 0, hi-lo)
			at := make([]int, 0, hi-lo)
			for i := lo; i < hi; i++ {
				c := &out[i]
				if raw {
					if c.frame, c.derr = decode64(frames[i]); c.derr != nil {
						continue
					}
				} else {
					c.frame = frames[i]
				}
				batch = append(batch, c.frame)
				at = append(at, i)
			}
			envs, errs := crypto.VerifyFrames(batch)
			for j, i := range at {
				out[i].env, out[i].verr = envs[j], errs[j]
			}
		})
	}
	return jobs
}

// outcome is what one entry did when it was applied, and the facts about the
// state it met that explain a rejection.
type outcome struct {
	typ    crypto.Type // 0 when the frame did not verify
	head   [32]byte    // the chain after the entry
	sender [32]byte
	err    error // the state machine's rejection, or nil
	// chat is set for an accepted chat message.
	chat *state.Chat
	// unverified: the frame's signature (or its format) does not verify.
	unverified error
	// foreign: the envelope is for another group.
	foreign *crypto.GroupID
	// nonMember: a normal entry from someone who is not a member there.
	nonMember bool
	// mismatch is set for a checkpoint by a member that attests a head the
	// chain did not have.
	mismatch *checkpointMismatch
}

type checkpointMismatch struct {
	signer [32]byte
	index  uint64 // the attested index
	head   [32]byte
	want   [32]byte // the chain's head there; zero if no entry there
	found  bool     // whether an entry with a frame sits at index
}

// replay applies entries to a group's state machine in order, as a member's
// node does, and records each entry's outcome.
type replay struct {
	st       *state.State
	outcomes []outcome
	// indexes are the log indexes of the outcomes: with their heads, the
	// chain head after every entry, which the state machine keeps only
	// for recent entries (state/heads.go).
	indexes []uint64
	// checks are the accepted checkpoints, in log order (the state keeps
	// none).
	checks   []state.Checkpoint
	rejected int
}

func newReplay(group crypto.GroupID, n int) *replay {
	return &replay{st: state.New(group), outcomes: make([]outcome, 0, n), indexes: make([]uint64, 0, n)}
}

// headAt returns the chain head right after the entry applied at index,
// and whether one was.
func (rp *replay) headAt(index uint64) (head [32]byte, found bool) {
	i, found := slices.BinarySearch(rp.indexes, index)
	if !found {
		return [32]byte{}, false
	}
	return rp.outcomes[i].head, true
}

// headThrough returns the chain head after every entry applied up to and
// including index.
func (rp *replay) headThrough(index uint64) [32]byte {
	i, found := slices.BinarySearch(rp.indexes, index)
	if found {
		i++
	}
	if i == 0 {
		return crypto.NewChain(rp.st.Group).Head
	}
	return rp.outcomes[i-1].head
}

// apply applies the entry e, whose frame c has been verified.
func (rp *replay) apply(e *Entry, c *checked) {
	st := rp.st
	var o outcome
	env := c.env
	switch {
	case c.verr != nil:
		o.unverified = c.verr
	case env.Group != st.Group:
		g := env.Group
		o.foreign = &g
	default:
		o.typ, o.sender = env.Type, env.Sender
		if e.Kind == KindEntry && !st.Creator.IsZero() && st.Members[env.Sender] == nil {
			o.nonMember = true
		}
		if e.Kind == KindEntry && !o.nonMember && !st.Creator.IsZero() && env.Type == crypto.TypeCheckpoint {
			o.mismatch = rp.checkMismatch(env)
		}
	}
	var r state.Result
	switch e.Kind {
	case KindConf:
		r = st.ApplyConfEnv(e.Index, e.NodeID, e.Change, c.frame, env, c.verr)
	default:
		r = st.ApplyEntryEnv(e.Index, c.frame, env, c.verr)
	}
	o.err, o.chat, o.head = r.Err, r.Chat, st.Chain.Head
	if r.Check != nil {
		rp.checks = append(rp.checks, *r.Check)
	}
	if r.Err != nil {
		rp.rejected++
	}
	rp.outcomes = append(rp.outcomes, o)
	rp.indexes = append(rp.indexes, e.Index)
}

// checkMismatch returns the mismatch of a member's well-formed checkpoint
// with the chain, or nil if it matches. It repeats the state machine's check
// so that the verifier can tell this rejection, which is evidence that the
// history differs from what a member saw, from the ordinary ones. It checks
// against every head of the replay, not only those the state keeps: a
// checkpoint too old for the state machine to check is rejected, but one
// that names a head the history never had is evidence all the same.
func (rp *replay) checkMismatch(env *crypto.Envelope) *checkpointMismatch {
	var b state.CheckpointBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.Head) != 32 {
		return nil // malformed: an ordinary rejection
	}
	want, found := rp.headAt(b.Index)
	if found && want == [32]byte(b.Head) {
		return nil
	}
	return &checkpointMismatch{signer: env.Sender, index: b.Index, head: [32]byte(b.Head), want: want, found: found}
}
