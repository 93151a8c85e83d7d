package adversary

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
)

// TestReplayOldFrames: a still-member M2, colluding with the removed M,
// copies old signed frames of others from its log and proposes them again:
// the admin's invite of M and M's own join (to bring M back), the admin's
// removal of a member who has since rejoined, old settings, admin-role,
// invite, address, latency-map, voter-change and checkpoint entries, the
// genesis. Every one is rejected by the honest members (the counter rule of
// package state binds each entry to its place in the log) and counted, the
// honest state is unchanged, and M's keys open nothing sent after its
// removal.
func TestReplayOldFrames(t *testing.T) {
	t.Parallel()
	const c, r, m, m2 = 0, 1, 2, 3 // creator (admin), honest (removed, then back), malicious, colluder
	g := newGroup(t, 4, options{pings: true})
	g.form(c, r, m, m2)
	ctx := ctxT(t, 90*time.Second)
	g.send(c, "before M's removal")

	// The history the frames come from.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(g.node(c).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: true}))
	must(g.node(c).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: false}))
	must(g.node(c).SetAdmin(ctx, g.id, g.pub(m2).String(), true))
	must(g.node(c).SetAdmin(ctx, g.id, g.pub(m2).String(), false))
	x := outsider(t, 0x51)
	_, err := g.node(c).Invite(ctx, g.id, x.Public().String())
	must(err)
	must(g.node(c).RevokeInvite(ctx, g.id, x.Public().String()))
	// R is removed, and comes back with a new store.
	must(g.node(c).Remove(ctx, g.id, g.pub(r).String()))
	g.c.Crash(r)
	must(os.RemoveAll(g.c.Member(r).Dir))
	must(os.MkdirAll(g.c.Member(r).Dir, 0o700))
	must(g.c.Start(r))
	g.join(c, r)
	g.waitVoters(4, c, r, m, m2)
	// R moves (to another spelling of its address) and back: its first
	// address entry is then out of date.
	url := g.c.Member(r).URL
	g.c.Member(r).Tweak = func(cfg *node.Config) { cfg.URL = url + "/" }
	must(g.c.Restart(r))
	g.c.Eventually(t, 30*time.Second, "R's move to be committed", func() bool { return g.peerURL(c, r) == url+"/" })
	g.c.Member(r).Tweak = nil
	must(g.c.Restart(r))
	g.c.Eventually(t, 30*time.Second, "R's move back to be committed", func() bool { return g.peerURL(c, r) == url })
	g.c.Eventually(t, 30*time.Second, "a latency map and a checkpoint of an honest member in the log", func() bool {
		return g.find(c, func(e entry) bool { return e.honest(g, c, r) && e.env.Type == crypto.TypeLatencyMap }) != nil &&
			g.find(c, func(e entry) bool { return e.honest(g, c, r) && e.env.Type == crypto.TypeCheckpoint }) != nil
	})
	must(g.node(c).Remove(ctx, g.id, g.pub(m).String()))
	g.c.Eventually(t, 30*time.Second, "the honest members to see M removed", func() bool {
		return !g.isMember(c, g.pub(m)) && !g.isMember(r, g.pub(m))
	})

	// The frames to replay, as the honest log holds them, in the order to
	// replay them: the invite of M before M's join.
	signedBy := func(i int) func(entry) bool {
		return func(e entry) bool { return e.env.Sender == g.pub(i).Sign }
	}
	type replay struct {
		what, reason string
		e            *entry
	}
	stale := "replayed or stale"
	replays := []replay{
		{"the genesis", "unexpected membership entry type", g.find(c, func(e entry) bool { return e.env.Type == crypto.TypeGenesis })},
		{"the admin's invite of M", stale, g.find(c, func(e entry) bool {
			var b state.InviteBody
			return signedBy(c)(e) && e.env.Type == crypto.TypeInvite && state.Decode(e.env.Payload, &b) == nil && bytes.Equal(b.Invitee, g.pub(m).Bytes())
		})},
		{"M's join", stale, g.find(c, func(e entry) bool { return signedBy(m)(e) && e.env.Type == crypto.TypeJoin })},
		{"the removal of R, who is back", stale, g.find(c, func(e entry) bool { return signedBy(c)(e) && e.env.Type == crypto.TypeRemove })},
		{"R's first join", "already a member", g.find(c, func(e entry) bool { return signedBy(r)(e) && e.env.Type == crypto.TypeJoin })},
		{"the settings that let members invite", stale, g.find(c, func(e entry) bool {
			var b state.SettingsBody
			return e.env.Type == crypto.TypeSettings && state.Decode(e.env.Payload, &b) == nil && b.MembersInvite
		})},
		{"the grant of the admin role to M2", stale, g.find(c, func(e entry) bool {
			var b state.AdminBody
			return e.env.Type == crypto.TypeAdmin && state.Decode(e.env.Payload, &b) == nil && b.Admin
		})},
		{"the revoked invite", stale, g.find(c, func(e entry) bool {
			var b state.InviteBody
			return e.env.Type == crypto.TypeInvite && state.Decode(e.env.Payload, &b) == nil && bytes.Equal(b.Invitee, x.Public().Bytes())
		})},
		{"R's old address", stale, g.find(c, func(e entry) bool {
			var b state.AddressBody
			return signedBy(r)(e) && e.env.Type == crypto.TypeAddress && state.Decode(e.env.Payload, &b) == nil && b.URL == url+"/"
		})},
		{"a latency map", stale, g.find(c, func(e entry) bool { return e.honest(g, c, r) && e.env.Type == crypto.TypeLatencyMap })},
		{"a checkpoint", stale, g.find(c, func(e entry) bool { return e.honest(g, c, r) && e.env.Type == crypto.TypeCheckpoint })},
		{"a promotion", stale, g.find(c, func(e entry) bool { return e.honest(g, c, r) && e.env.Type == crypto.TypePromote })},
	}
	for _, rp := range replays {
		if rp.e == nil {
			t.Fatalf("no frame for %s in the log", rp.what)
		}
	}
	// Honest hosts drop normal entries that the member forwarding them did
	// not sign; honest members may elect M2 as host, and then nothing
	// stands between its replays and the log but the state machine. M2
	// stays host for every replay (placement runs here, and could move it).
	g.keepHost(m2, c, r)
	before := g.settled(c, r)
	counted := g.count(stale, c, r)
	var wantStale int64
	at := make([]uint64, len(replays))
	for k, rp := range replays {
		if rp.e.Kind == transcript.KindConf {
			at[k] = g.commitConf(m2, c, rp.e.Frame, rp.e.Change, rp.e.NodeID)
		} else {
			at[k] = g.commit(m2, c, rp.e.Frame)
		}
		if rp.reason == stale {
			wantStale++
		}
	}
	res, _ := g.outcomes(c)
	for k, rp := range replays {
		g.rejected(res, at[k], "the replay of "+rp.what, rp.reason)
	}
	g.applied(at[len(at)-1], c, r)
	g.unchanged(before, c, r)
	g.rose(counted, wantStale)

	g.send(r, "after M's removal")
	read := g.readable(c, g.ident(m))
	if !read["before M's removal"] {
		t.Fatal("M's keys do not open a message from before its removal: the check below would prove nothing")
	}
	if read["after M's removal"] {
		t.Error("the removed member's keys open a message sent after its removal")
	}
}

// entry is a committed entry of a log with its envelope.
type entry struct {
	transcript.Entry
	env *crypto.Envelope
}

// honest reports whether one of the given nodes signed e.
func (e entry) honest(g *group, nodes ...int) bool {
	for _, i := range nodes {
		if e.env.Sender == g.pub(i).Sign {
			return true
		}
	}
	return false
}

// find returns the first entry of node h's log, among those its state
// machine accepted, that match says is the one.
func (g *group) find(h int, match func(entry) bool) *entry {
	g.t.Helper()
	res, _ := g.outcomes(h)
	for _, e := range g.log(h) {
		if res[e.Index].Err != nil || res[e.Index].Env == nil {
			continue
		}
		if ent := (entry{Entry: e, env: res[e.Index].Env}); match(ent) {
			return &ent
		}
	}
	return nil
}

// peerURL returns the address node i has for node of.
func (g *group) peerURL(i, of int) string {
	st, _ := g.c.Status(i)
	for _, mm := range st.Members {
		if mm.PublicID == g.pub(of).String() {
			return mm.PeerURL
		}
	}
	return ""
}
