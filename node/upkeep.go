package node

import (
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// upkeep runs every retry interval on the group's goroutine: it writes what
// was put off, proposes queued messages again, moves voters, announces a new
// address and signs a checkpoint, each when due. An error means the outbox
// cannot be written, and the group must stop.
func (g *group) upkeep() error {
	// What was put off rides with the next write while the group is busy;
	// once it has written nothing for a whole interval, it is written here,
	// so that a restart finds the commit index and the outbox up to date.
	// Not at every tick: in a group that writes now and then (a message
	// every few hundred milliseconds) that would be a second fsync per
	// message.
	all := !g.wrote
	g.wrote = false
	if err := g.flushOutbox(all); err != nil {
		return err
	}
	g.saveHeard(false)
	g.watchCensorship(time.Now())
	// Keys past their retention go even from a halted group.
	g.n.keys.expire(time.Now())
	g.pruneKeys()
	if g.fork != nil {
		g.n.offerSuccessors(g, false) // reform.go
		return nil                    // halted: nothing more is proposed (fork.go)
	}
	g.retryOutbox()
	g.retryInvites()
	g.restoreTentative()
	g.dropFormerTentative()
	g.saveTentative()
	g.deliverTentative(time.Now())
	g.proposeOrphans(time.Now())
	g.reopenQuotas()
	g.maybeLead()
	g.placeVoters()
	g.maybeUpdateAddress()
	g.maybeCheckpoint()
	g.maybePublishPrekey()
	g.maybeRecoverKeys()
	g.snapshotWhenIdle(time.Now())
	return nil
}

// maybeLead commits a lead entry while this node leads but the log does not
// name it the host yet (state.State.Host): until then the group's state
// machine takes no voter change from it. Hosts drop lead entries forwarded
// to them, so only the leader's own gets in.
func (g *group) maybeLead() {
	if g.role != raft.StateLeader || g.left || g.st.Host == g.n.self.Sign {
		return
	}
	if m := g.st.Members[g.n.self.Sign]; m == nil || !m.Voter {
		return
	}
	if err := g.proposeEntry(crypto.TypeLead, &state.LeadBody{Term: g.term}); err != nil {
		g.n.log.Debug().Err(err).Msg("lead entry proposal")
	}
}

// maybeUpdateAddress commits this node's new peer URL when it differs from the
// one the group knows (a restart on another address, or Node.SetURL while it
// runs), so that the others can reach it again. This node can still reach
// them, so the proposal gets through.
func (g *group) maybeUpdateAddress() {
	// Read once: SetURL may change it meanwhile, and the entry and the
	// announcements must name the same address (the next upkeep sends
	// the newer one).
	url := g.n.URL()
	me := g.st.Members[g.n.self.Sign]
	if me == nil || g.left || me.URL == url {
		return
	}
	// The same address is proposed and announced again only every few
	// intervals, while its entry is on its way; a newer one at once.
	if url == g.lastAddrURL && time.Since(g.lastAddress) < 4*g.n.cfg.RetryInterval {
		return
	}
	g.lastAddress, g.lastAddrURL = time.Now(), url
	body, err := state.Encode(&state.AddressBody{URL: url})
	if err != nil {
		return
	}
	if g.leader != raft.None {
		if err := g.proposeEntry(crypto.TypeAddress, &state.AddressBody{URL: url}); err != nil {
			g.n.log.Debug().Err(err).Msg("address update proposal")
		}
	}
	// Until the update is committed, the others would keep sending to the old
	// address (and this node might never hear from the leader): tell them
	// directly with a signed announcement, which they use as a hint.
	// The members a catch-up named (catchup.go) are told too: after a
	// long absence, they may be the only ones left.
	urls := map[[32]byte]string{}
	for k, m := range g.st.Members {
		urls[k] = g.peerURL(k, m.URL)
	}
	for k, m := range g.provisional {
		urls[k] = m.url
	}
	for k, to := range urls {
		if k == g.n.self.Sign || to == "" {
			continue
		}
		frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypeAddress, Group: g.id, To: k, Payload: body})
		if err != nil {
			return
		}
		g.postAsync(to, frame, nil)
	}
}

// peerURL is where to reach a member: a signed address announcement from the
// member itself overrides the committed address until the log catches up.
func (g *group) peerURL(k [32]byte, committed string) string {
	committed = ownURL(k, committed) // peerurl.go
	if u, ok := g.urlHint[k]; ok {
		if u == committed {
			delete(g.urlHint, k)
		} else {
			return u
		}
	}
	return committed
}

// maybeCheckpoint signs and commits this member's view of the transcript
// chain every CheckpointEntries entries or CheckpointInterval, whichever comes
// first, so that a transcript shows who attested to which prefix: a host that
// showed members different histories would be caught by the mismatch.
func (g *group) maybeCheckpoint() {
	if g.left || g.st.Members[g.n.self.Sign] == nil || g.leader == raft.None {
		return
	}
	c := g.st.Chain
	// Count only entries that are not checkpoints: in a large group each
	// wave of checkpoints would otherwise make the next one due.
	fresh := g.entries - g.checkEntries
	if c.Index == 0 || fresh == 0 {
		return
	}
	if fresh < g.n.cfg.CheckpointEntries && time.Since(g.lastCheck) < g.n.cfg.CheckpointInterval {
		return
	}
	if err := g.proposeEntry(crypto.TypeCheckpoint, &state.CheckpointBody{Index: c.Index, Head: c.Head[:]}); err != nil {
		return
	}
	g.checkEntries, g.lastCheck = g.entries, time.Now()
}
