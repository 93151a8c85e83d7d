package node

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// TestGateControlRefusesWhatTheStateWould: the host's gate for a member's
// entries other than chat messages drops each kind of entry the state
// machine would refuse for its kind, size or signer's role, and lets the
// others through until the forwarder's allowance is spent.
func TestGateControlRefusesWhatTheStateWould(t *testing.T) {
	keeper, member, admin := [32]byte{1}, [32]byte{2}, [32]byte{3}
	newGate := func() *group {
		g := &group{st: state.New(crypto.GroupID{})}
		g.st.Members[keeper] = &state.Member{Keeper: true}
		g.st.Members[member] = &state.Member{}
		g.st.Members[admin] = &state.Member{Admin: true}
		return g
	}
	entry := func(size int) *pb.Entry { return &pb.Entry{Data: make([]byte, size)} }
	now := time.Now()
	for _, c := range []struct {
		what   string
		signer [32]byte
		kind   crypto.Type
		size   int
		want   string
	}{
		{"a member's checkpoint", member, crypto.TypeCheckpoint, 200, ""},
		{"a keeper's latency map", keeper, crypto.TypeLatencyMap, 300, ""},
		{"an admin's settings", admin, crypto.TypeSettings, 200, ""},
		{"a member's invite", member, crypto.TypeInvite, 300, reasonProposalNotAllowed},
		{"an admin's invite", admin, crypto.TypeInvite, 300, ""},
		{"a member's settings", member, crypto.TypeSettings, 200, reasonProposalNotAllowed},
		{"a member's rename", member, crypto.TypeRename, 200, reasonProposalNotAllowed},
		{"a member's role change", member, crypto.TypeAdmin, 200, reasonProposalNotAllowed},
		{"an admin's role change", admin, crypto.TypeAdmin, 200, ""},
		{"a member's invite of a keeper", member, crypto.TypeKeeper, 300, reasonProposalNotAllowed},
		{"a keeper's prekey", keeper, crypto.TypePrekey, 1400, reasonProposalKeeperKind},
		{"a leave as a normal entry", member, crypto.TypeLeave, 200, reasonProposalNotLogKind},
		{"a ping as a log entry", member, crypto.TypePing, 200, reasonProposalNotLogKind},
		{"a 20 KiB checkpoint", member, crypto.TypeCheckpoint, 20 << 10, reasonProposalTooLarge},
		{"a latency map beyond 3 members", member, crypto.TypeLatencyMap, 5 << 10, reasonProposalTooLarge},
		{"a 3 KiB address", member, crypto.TypeAddress, 3 << 10, reasonProposalTooLarge},
		{"a 3 KiB checkpoint", member, crypto.TypeCheckpoint, 3 << 10, reasonProposalTooLarge},
		{"a 3 KiB settings entry", admin, crypto.TypeSettings, 3 << 10, ""},
	} {
		g := newGate()
		if got, _ := g.gateControl(7, c.signer, c.kind, entry(c.size), now); got != c.want {
			t.Errorf("%s: the gate says %q, want %q", c.what, got, c.want)
		}
	}

	// A revocation: only the invite's inviter or an admin may.
	inviter, other := mustIdentity(t), mustIdentity(t)
	invitee := mustIdentity(t).Public()
	revoke := func(by *identity.Identity) *pb.Entry {
		payload, err := state.Encode(&state.TargetBody{Target: invitee.Sign[:]})
		if err != nil {
			t.Fatal(err)
		}
		frame, err := crypto.Sign(by, &crypto.Envelope{Type: crypto.TypeRevoke, Counter: 1, Time: 1, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Entry{Data: frame}
	}
	g := newGate()
	g.st.Members[inviter.Public().Sign] = &state.Member{}
	g.st.Members[other.Public().Sign] = &state.Member{}
	g.st.Invites[invitee.Sign] = state.Invite{Invitee: invitee, Inviter: inviter.Public()}
	for _, c := range []struct {
		what string
		by   *identity.Identity
		want string
	}{
		{"the inviter's revocation", inviter, ""},
		{"another member's revocation", other, reasonProposalNotAllowed},
	} {
		if got, _ := g.gateControl(7, c.by.Public().Sign, crypto.TypeRevoke, revoke(c.by), now); got != c.want {
			t.Errorf("%s: the gate says %q, want %q", c.what, got, c.want)
		}
	}

	// The allowance: the burst, then the rate.
	g = newGate()
	var took int
	for g.chargeControl(7, 1000, now) {
		took += 1000
	}
	if took > controlBurst || took < controlBurst-1000 {
		t.Fatalf("the allowance let %d bytes through at once, want its burst %d", took, controlBurst)
	}
	if reason, _ := g.gateControl(7, member, crypto.TypeCheckpoint, entry(200), now); reason != reasonProposalOverAllowance {
		t.Fatalf("with the allowance spent the gate says %q, want %q", reason, reasonProposalOverAllowance)
	}
	if !g.chargeControl(8, 1000, now) {
		t.Fatal("another member's allowance was spent too")
	}
	// A new term (an election a voter may force at will) refills nothing.
	g.hostQuota.reset(g.hostQuota.term + 1)
	if g.chargeControl(7, 1000, now) {
		t.Fatal("a new term refilled the allowance")
	}
	if !g.chargeControl(7, 1000, now.Add(time.Second)) {
		t.Fatal("a second later the allowance had not refilled by 1,000 bytes")
	}
	if g.chargeControl(7, 128, now.Add(time.Second)) && g.chargeControl(7, 8<<10, now.Add(time.Second)) {
		t.Fatal("in one second the allowance refilled by more than its rate")
	}
}

func mustIdentity(t *testing.T) *identity.Identity {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}
