package node

import (
	"context"
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// run0 starts the group's goroutine (run).
func (g *group) run0() {
	g.n.wg.Add(1)
	go func() {
		defer g.n.wg.Done()
		defer close(g.donec)
		g.run()
	}()
}

// stop tells the group's goroutine to stop and waits until it has.
func (g *group) stop() {
	select {
	case <-g.stopc:
	default:
		close(g.stopc)
	}
	<-g.donec
}

// do runs fn on the group's goroutine and waits for it.
//
// Once the goroutine has taken fn it runs it at once, so do waits for fn
// to end even when the group is being stopped meanwhile: callers read
// what fn wrote as soon as do returns, error or not, and returning while
// fn still ran would be a data race (the race detector found one in a
// send that raced a crash). Only the goroutine's end (donec, closed after
// fn returned) ends the wait otherwise.
func (g *group) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case g.reqc <- func() { fn(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopc:
		return g.stoppedErr()
	case <-g.donec:
		return g.stoppedErr()
	}
	select {
	case <-done:
		return nil
	case <-g.donec:
		return g.stoppedErr()
	}
}

// stoppedErr says that the group's goroutine is stopped, and why when it
// stopped on its own (a write to disk failed).
func (g *group) stoppedErr() error {
	if p := g.failed.Load(); p != nil {
		return fmt.Errorf("group %s stopped on this node: it cannot write to the disk (%v); free some space or fix the disk, then restart demes serve: %w", g.id, *p, ErrStopped)
	}
	return fmt.Errorf("group %s: %w", g.id, ErrStopped)
}

// run is the group's goroutine: the only one that touches its raft and its
// state. Each turn handles one event (a tick, peers' raft messages, a
// request, an upkeep or placement timer, a measurement), then runs raft's
// Ready loop for whatever the event changed.
func (g *group) run() {
	tick := time.NewTicker(g.timing.Tick)
	defer tick.Stop()
	g.ticker = tick
	retry := time.NewTicker(g.n.cfg.RetryInterval)
	defer retry.Stop()
	ping := time.NewTicker(g.n.cfg.PingInterval)
	defer ping.Stop()
	defer func() {
		if g.pl.wake != nil {
			g.pl.wake.Stop()
		}
	}()
	for {
		select {
		case <-g.stopc:
			// Messages sent since the last write would be lost from the
			// outbox otherwise (their senders are not acknowledged yet).
			if !g.n.crashed.Load() {
				_ = g.flushOutbox(true)
				g.saveHeard(true)
				g.snapshotAtStop()
			}
			return
		case fired := <-tick.C:
			g.beginTurn("raft tick")
			g.turn.tickWaited = g.turn.start.Sub(fired)
			// A halted group's raft stands still: no election, no
			// heartbeat (fork.go).
			if g.fork == nil {
				now := time.Now()
				if !g.restoredHoldsTick(now) {
					g.rn.Tick()
				}
				g.tickTentative()
				g.probeLeader(now)
				g.watchSilence(now)
				g.markSilentPeers(now)
			}
		case msgs := <-g.stepc:
			g.beginTurn("peer raft messages")
			g.stepAll(msgs)
		case id := <-g.unreachc:
			g.beginTurn("peer unreachable")
			g.rn.ReportUnreachable(id)
		case <-retry.C:
			g.beginTurn("upkeep")
			g.tellRemovedAgain(time.Now())
			if err := g.upkeep(); err != nil {
				g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot persist the outbox; stopping the group")
				// Sends and status say why the group stopped, as for a
				// failed raft write below.
				g.failed.Store(&err)
				g.endTurn(time.Now())
				return
			}
		case <-ping.C:
			g.beginTurn("placement")
			g.placementTick()
		case s := <-g.rttc:
			g.beginTurn("round trip")
			g.onRTT(s)
		case a := <-g.attc:
			g.beginTurn("attestation")
			g.onAttestation(a)
		case c := <-g.headc:
			g.beginTurn("head statement")
			g.onHead(c)
		case <-g.suspWake:
			g.beginTurn("suspicions")
			g.takeSuspicions()
		case <-g.pullc:
			g.beginTurn("attestation pull")
			g.pullAttestations()
		case fn := <-g.reqc:
			g.beginTurn("request")
			fn()
		}
		g.turn.eventDone = time.Now()
		// Take what else is waiting before asking raft for a Ready, so
		// that one Ready (one fsync, one append to each member) covers
		// every peer message and proposal that arrived meanwhile, as
		// raft.Node's own goroutine batched them while the previous Ready
		// was being written.
		g.turn.drained = g.drainWaiting()
		g.turn.drainDone = time.Now()
		if g.publishDue {
			g.publish() // the sends of this turn (enqueue)
		}
		// Whatever happened may have given raft something to persist,
		// send or apply.
		for g.readyAllowed() && g.rn.HasReady() {
			if err := g.handleReady(g.rn.Ready()); err != nil {
				// A node that cannot persist must not acknowledge anything:
				// stop this group rather than go on with a diverging state.
				g.n.log.Error().Err(err).Str("group", g.id.String()).Msg("cannot persist raft state; stopping the group")
				g.failed.Store(&err)
				g.endTurn(time.Now()) // a write that hung, then failed, was slow too
				return
			}
		}
		g.endTurn(time.Now())
	}
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
		return g.stoppedErr()
	case <-g.donec:
		return g.stoppedErr()
	}
}

// maxDrain bounds how many waiting events one turn of run takes before its
// Ready, so that a flood of them cannot put off raft's writes for long.
const maxDrain = 256

// drainWaiting handles, without blocking, the peer messages, requests and
// unreachable reports already waiting, up to maxDrain of them, and returns
// how many it handled. It notes the slowest in the turn's watch.
func (g *group) drainWaiting() int {
	for k := range maxDrain {
		start, what := time.Now(), ""
		select {
		case msgs := <-g.stepc:
			what = "peer raft messages"
			g.stepAll(msgs)
		case fn := <-g.reqc:
			what = "request"
			fn()
		case id := <-g.unreachc:
			what = "peer unreachable"
			g.rn.ReportUnreachable(id)
		default:
			return k
		}
		g.noteDrained(what, time.Since(start))
	}
	return maxDrain
}

// stepAll hands peers' raft messages (checked by admit) to raft. A proposal
// raft does not take (this node knows no host) is dropped at once: its
// author proposes it again from its outbox.
func (g *group) stepAll(msgs []*pb.Message) {
	g.noteRaftHeard(msgs)
	for _, m := range msgs {
		if g.fork != nil {
			g.n.countReject(reasonHalted, "dropped raft messages of a group halted after a fork")
			return
		}
		if g.dropDeposed(m) {
			g.n.countReject(reasonDeposed, "dropped a raft message of a host the voters deposed")
			continue
		}
		if g.dropShunnedVote(m) {
			g.n.countReject(reasonShunnedVote, "dropped a vote request of a host the voters deposed")
			continue
		}
		if g.restoredHoldsElections(m) {
			g.n.countReject(reasonRestoredVote, "dropped an election message: this node's copy of the group was restored from a backup and has not caught up")
			continue
		}
		g.noteForcedVote(m)
		if m.GetType() != pb.MsgProp {
			if err := g.stepSafely(m); err != nil {
				g.n.log.Debug().Err(err).Str("type", m.GetType().String()).Msg("raft step")
			}
			continue
		}
		// The host drops what could only be rejected (quota.go).
		g.takeForwarded(m)
	}
}
