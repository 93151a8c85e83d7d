package adversary

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// TestWeakKeyOutsider: an outsider's public id is built on an ed25519 key of
// small order (the identity point, and a non-canonical encoding of it),
// which would verify the forged signature R = identity, S = 0 on any
// message: anyone could sign as it. The honest admin's node refuses to
// invite it; M, in a group where members may invite, signs and proposes an
// invite of it anyway, and a join and a settings change "signed" by it with
// the forged signature. Every entry is rejected by the honest members and
// counted, the id never becomes a member (so no message is ever sealed to
// it), and the honest state is unchanged.
func TestWeakKeyOutsider(t *testing.T) {
	t.Parallel()
	const c, a, m = 0, 1, 2 // creator (admin), honest, malicious
	g := newGroup(t, 3, options{})
	g.form(c, a, m)
	ctx := ctxT(t, 30*time.Second)
	if err := g.node(c).SetSettings(ctx, g.id, node.GroupSettings{MembersInvite: true}); err != nil {
		t.Fatal(err)
	}
	g.c.Eventually(t, 30*time.Second, "M to see that it may invite", func() bool {
		st, _ := g.c.Status(m)
		return st.CanInvite
	})
	before := g.settled(c, a)
	weak := g.count("weak key", c, a)
	forged := g.count("bad signature", c, a)

	box := outsider(t, 0x55).Public().Box // a sound encryption key: the weak id's holder could read what is sealed to it
	var tries []attempt
	try := func(what, reason string, at uint64) { tries = append(tries, attempt{what, reason, at}) }
	var weakIDs []identity.PublicID
	// M hosts: an honest host would drop the frames M forwards but did not
	// sign, before the log.
	g.makeHost(m, c, a)
	for _, k := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000", // the identity point
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // the identity point, as y = p + 1
	} {
		b, err := hex.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		w := identity.PublicID{Sign: [32]byte(b), Box: box}
		weakIDs = append(weakIDs, w)
		if _, err := g.node(c).Invite(ctx, g.id, w.String()); !errors.Is(err, node.ErrInvalid) || !strings.Contains(err.Error(), "weak key") {
			t.Errorf("the admin's node invited an id with a weak key (%s): %v", k[:8], err)
		}
		try("M's invite of a weak id", "weak key",
			g.signedFresh(c, func() uint64 {
				return g.commit(m, c, g.signBy(m, crypto.TypeInvite, &state.InviteBody{Invitee: w.Bytes(), Expires: time.Now().Add(time.Hour).UnixNano()}))
			}))
		join := g.forge(w.Sign, crypto.TypeJoin, &state.JoinBody{PublicID: w.Bytes(), RaftID: state.RaftID(w.Sign), Name: "weak", Nonce: make([]byte, 32)})
		try("a join forged for the weak id", "bad signature", g.commitConf(m, c, join, state.AddLearner, state.RaftID(w.Sign)))
		try("a settings change forged for the weak id", "bad signature",
			g.commit(m, c, g.forge(w.Sign, crypto.TypeSettings, &state.SettingsBody{MembersInvite: false})))
	}
	g.allRejected(c, tries)
	_, st := g.outcomes(c)
	for _, w := range weakIDs {
		if st.Members[w.Sign] != nil || st.Former[w.Sign] != nil {
			t.Errorf("the weak id %x became a member", w.Sign[:4])
		}
	}
	g.applied(tries[len(tries)-1].at, c, a)
	g.unchanged(before, c, a)
	g.rose(weak, 2)
	g.rose(forged, 4)
}

// forge returns a frame of type t with body, "signed" by the ed25519 key
// key with the signature R = the identity point, S = 0, which a key of small
// order verifies on any message unless the check refuses such keys.
func (g *group) forge(key [32]byte, t crypto.Type, body any) []byte {
	g.t.Helper()
	frame := g.signAs(outsider(g.t, 0x56), t, body)
	// version (1) || sender (32) || signature (64) || body
	copy(frame[1:33], key[:])
	sig := make([]byte, 64)
	sig[0] = 1 // the identity point's encoding, y = 1; S = 0
	copy(frame[33:97], sig)
	return frame
}
