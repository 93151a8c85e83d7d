package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

// TestDepositionLapses: a voter counts a majority suspecting the host (its
// own suspicion and another voter's, which clears soon after: the host was
// only slow for that one) and stops following it. The other voters keep
// that host, so the term does not change. Once a majority no longer
// suspects the host, the voter follows it again and its message commits;
// a deposition that outlived its majority would cut that voter off for the
// rest of the term. And its suspicion, told the others as a past one while
// it did not follow the host, is withdrawn.
func TestDepositionLapses(t *testing.T) {
	t.Parallel()
	// An election timeout of 1.5 s, not 0.5: once the victim deposes the
	// host, the host keeps its quorum through the witness alone, and on a
	// loaded machine one slow turn of the witness's group (over 0.5 s,
	// logged) had the host step down and be elected again in a new term,
	// which ends the deposition this test watches lapse.
	c, host, victim, witness, sent := newSuspectingVictim(t, 341, node.Timing{Tick: 50 * time.Millisecond, ElectionTicks: 30, HeartbeatTicks: 1})
	st, _ := c.Status(host)
	term := st.Term
	wkey := c.Member(witness).ID.Public().Sign
	ctx := ctxT(t, 30*time.Second)
	// The witness's suspicion is reported as its pings would repeat it,
	// until the victim's raft loses the host (it drops its heartbeats):
	// from then on the victim's pings tell its suspicion as a past one.
	// Reported once, the witness's next real ping withdrew it and the
	// deposition lapsed a second later, on a loaded machine before the
	// victim's raft had lost the host.
	c.Eventually(t, 30*time.Second, "the victim to depose the host and follow no host", func() bool {
		g, ok := c.Status(victim)
		if !ok {
			return false
		}
		if c.depositions(victim) > 0 && g.Host == "" {
			return true
		}
		if g.Host != "" {
			if err := node.ReportSuspicion(ctx, c.Node(victim), c.GroupID, wkey, true); err != nil {
				t.Fatal(err)
			}
		}
		return false
	})

	// The host was slow, not a censor: it takes the victim's messages
	// again, and the witness's suspicion clears.
	c.uncensor(host)
	if err := node.ReportSuspicion(ctx, c.Node(victim), c.GroupID, wkey, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("the victim's message did not commit once a majority no longer suspected the host: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the victim's send did not return")
	}
	if st, _ := c.Status(host); st.Term != term || c.Host() != host {
		t.Fatalf("the host changed (term %d -> %d): the test did not keep the host it was meant to", term, st.Term)
	}
	// Nor does the victim's suspicion outlive the lapse at the witness:
	// having deposed the host, the victim said so as a past suspicion,
	// which its pings withdraw once it follows the host again. Kept, its
	// pings would repeat it, and it would count towards a majority with
	// the next slow message of the witness's own, for 10 minutes.
	c.Eventually(t, 30*time.Second, "the witness to count no voter suspecting the host", func() bool {
		g, ok := c.Status(witness)
		if ok && g.Term != term {
			t.Fatalf("the term changed (%d -> %d) while the witness still counted the victim's suspicion: %+v", term, g.Term, g.Censorship)
		}
		return ok && g.Censorship == nil
	})
}

// newSuspectingVictim forms a group of three (CensorAfter 1 s, raft timing
// as given) whose host holds back the messages of one voter, the victim,
// and returns once the victim suspects it. The victim's message is on its way meanwhile: sent
// says whether it committed within a minute.
func newSuspectingVictim(t *testing.T, seed int64, timing node.Timing) (c *cluster, host, victim, other int, sent <-chan error) {
	c = newClusterWith(t, 3, seed, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.CensorAfter = time.Second
				cfg.Timing = timing
			}
		}
	})
	c.form()
	c.waitVoters(3)
	host = c.waitHost(-1)
	victim, other = (host+1)%3, (host+2)%3
	c.censor(host, victim)
	done := make(chan error, 1)
	go func() {
		m, err := c.Send(ctxT(t, 120*time.Second), victim, "held back", 60*time.Second)
		if err == nil && m.State != node.StateCommitted {
			err = fmt.Errorf("still %s after a minute", m.State)
		}
		done <- err
	}()
	c.Eventually(t, 30*time.Second, "the victim to suspect the host", func() bool {
		g, ok := c.Status(victim)
		return ok && g.Censorship != nil && !g.Censorship.Since.IsZero()
	})
	return c, host, victim, other, done
}

// uncensor undoes censor: member host's node takes every frame again.
func (c *cluster) uncensor(host int) {
	n := c.Node(host)
	c.net.Register(c.Member(host).URL, func(ctx context.Context, frame []byte) ([]byte, error) {
		return n.HandleFrame(ctx, frame)
	})
}

// TestDepositionLapsesWithoutAGoneVoter: a voter deposes the host, counting
// another voter's suspicion, and that voter then goes down for good. The
// host, which kept appending its own messages meanwhile, alone holds the
// longest log, so the deposing voter cannot be elected, and it drops the
// host's vote requests while the deposition stands. The gone voter's last
// report must stop counting, so that the deposition lapses and the group
// gets a host again; kept, it held the deposition, and the group, still
// until that voter came back.
func TestDepositionLapsesWithoutAGoneVoter(t *testing.T) {
	t.Parallel()
	// The LAN timing: the victim must lose the host (an election timeout
	// after it deposed it) while the gone voter's last report still counts.
	c, host, victim, gone, sent := newSuspectingVictim(t, 342, node.LAN)
	// The other voter goes down; its last ping had said it suspected the
	// host too.
	c.Crash(gone)
	ctx := ctxT(t, 30*time.Second)
	if err := node.ReportSuspicion(ctx, c.Node(victim), c.GroupID, c.Member(gone).ID.Public().Sign, true); err != nil {
		t.Fatal(err)
	}
	// The host appends its own messages all along, which the victim no
	// longer takes once it deposed the host: the host alone then holds the
	// longest log. (Started only once the victim showed the deposition,
	// the host's log was no longer than the victim's when, without a
	// quorum, it stepped down, and on a loaded machine the victim was
	// elected before the test saw it follow no host.)
	c.chatter(host, func() bool { return ctx.Err() == nil })
	c.Eventually(t, 30*time.Second, "the victim to depose the host", func() bool {
		return c.depositions(victim) > 0
	})
	// Its raft then loses the host (it drops its heartbeats); the user
	// still sees the deposition, not "0 of the 2 voters needed suspect it"
	// (the gone voter's report counts for a few seconds more).
	c.Eventually(t, 30*time.Second, "the victim to show the deposition while it follows no host", func() bool {
		g, ok := c.Status(victim)
		return ok && g.Host == "" && g.Censorship != nil && g.Censorship.Deposed
	})
	c.uncensor(host)
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("the victim's message did not commit: %v\n%s", err, c.Alerts())
		}
	case <-ctxT(t, 90*time.Second).Done():
		t.Fatal("the victim's send did not return")
	}
}

// TestSuspicionsNotCrowdedOut: a member, here the host itself, floods a
// voter with pings while that voter's group is busy; another voter's one
// report of a suspicion still reaches it. With one shared queue of 64
// reports, the flood filled it and the honest report was dropped: a
// censoring host could keep its victims' suspicions from ever counting,
// or, since a suspicion counts only while it is repeated, let them lapse.
func TestSuspicionsNotCrowdedOut(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 343, simnet.LinkConfig{Latency: time.Millisecond}, nil)
	c.form()
	c.waitVoters(3)
	host := c.waitHost(-1)
	voter, witness := (host+1)%3, (host+2)%3
	ctx := ctxT(t, 30*time.Second)
	release, err := node.HoldGroup(ctx, c.Node(voter), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, wkey := c.Member(host).ID.Public().Sign, c.Member(witness).ID.Public().Sign
	for range 1000 {
		if err := node.NoteSuspicion(c.Node(voter), c.GroupID, hostKey, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.NoteSuspicion(c.Node(voter), c.GroupID, wkey, true); err != nil {
		t.Fatal(err)
	}
	release()
	got, err := node.Suspecting(ctx, c.Node(voter), c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range got {
		if k == wkey {
			return
		}
	}
	t.Fatalf("the witness's report was crowded out by the host's flood: suspecting %d members", len(got))
}

// TestGonePastSuspicionStopsCounting: a voter that deposed the host says so
// in its pings, as a past suspicion, for as long as it stands; the other
// voters count it, towards deposing that host while they still follow it,
// and towards shunning it once its term ended. Repeated, it keeps counting;
// once its voter is down, it stops counting, as a suspicion does. Kept for
// the ten minutes it is told for, it made a majority with any one more
// suspicion: a victim of the host deposed it alone, again after each
// lapse, and shunned it alone once the term ended.
func TestGonePastSuspicionStopsCounting(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 344, simnet.LinkConfig{Latency: time.Millisecond}, nil)
	c.form()
	c.waitVoters(3)
	host := c.waitHost(-1)
	gone, witness := (host+1)%3, (host+2)%3
	st, _ := c.Status(witness)
	// Down for good; its pings would otherwise withdraw a report it did
	// not make.
	c.Crash(gone)
	key, hostKey := c.Member(gone).ID.Public().Sign, c.Member(host).ID.Public().Sign
	ctx := ctxT(t, 60*time.Second)
	counts := func() bool {
		ok, err := node.PastSuspicionCounts(ctx, c.Node(witness), c.GroupID, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// Repeated every half second, as the voter's pings would, it counts
	// for longer than CensorAfter (5 s by default)...
	start := time.Now()
	for time.Since(start) < 7*time.Second {
		if err := node.NotePastSuspicion(c.Node(witness), c.GroupID, key, st.Term, hostKey); err != nil {
			t.Fatal(err)
		}
		if !counts() {
			t.Fatalf("the past suspicion stopped counting %v after it was first reported, though repeated", time.Since(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	// ... and no longer once nothing repeats it.
	c.Eventually(t, 30*time.Second, "the witness to stop counting the gone voter's past suspicion", func() bool {
		return !counts()
	})
}
