package state

import (
	"bytes"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

// prekeyEntry appends signer's prekey entry with the given payload, signed
// at at.
func (w *world) prekeyEntry(signer *identity.Identity, payload []byte, at time.Time) Result {
	w.t.Helper()
	w.ctr++
	f, err := crypto.Sign(signer, &crypto.Envelope{Type: crypto.TypePrekey, Group: w.group, Counter: w.ctr, Time: at.UnixNano(), Payload: payload})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.raw(f)
}

func genPrekey(t *testing.T, owner *identity.Identity, notBefore time.Time) []byte {
	t.Helper()
	p, _, err := prekey.Generate(owner, notBefore, prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	return p.Bytes()
}

// TestPrekeyRules: a member's prekey entry publishes its own, valid, newer
// prekey; anything else is rejected and changes nothing; a member who
// leaves takes its prekey with it; the snapshot keeps them.
func TestPrekeyRules(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := w.join(2); r.Err != nil {
		t.Fatal(r.Err)
	}
	alice, bob, carol := w.ids[0], w.ids[1], w.ids[2]
	now := time.Now()

	first := genPrekey(t, alice, now.Add(-time.Minute))
	if r := w.prekeyEntry(alice, first, now); r.Err != nil {
		t.Fatal(r.Err)
	}
	if !bytes.Equal(w.s.Prekey(alice.Public().Sign), first) {
		t.Fatal("alice's prekey is not the one she published")
	}

	rejected := []struct {
		name    string
		signer  *identity.Identity
		payload []byte
		at      time.Time
		want    string
	}{
		{"another member's prekey", bob, genPrekey(t, carol, now.Add(-time.Minute)), now, "published by"},
		{"not a prekey", bob, []byte{0x82, 0x40, 0x40}, now, "malformed prekey"},
		{"a prekey with a broken signature", bob, flipLast(genPrekey(t, bob, now.Add(-time.Minute))), now, "malformed prekey"},
		{"expired when signed", bob, genPrekey(t, bob, now.Add(-time.Minute)), now.Add(prekey.DefaultLifetime + time.Hour), "not valid"},
		{"not yet valid when signed", bob, genPrekey(t, bob, now.Add(time.Hour)), now, "not valid"},
		{"the same prekey again", alice, first, now.Add(time.Second), "not newer"},
		{"an older prekey", alice, genPrekey(t, alice, now.Add(-time.Hour)), now.Add(time.Second), "not newer"},
		{"dated ahead of the group's clock", alice, genPrekey(t, alice, now.Add(QuotaLead+time.Hour)), now.Add(QuotaLead + 2*time.Hour), "ahead of the group's clock"},
		{"oversized", bob, make([]byte, prekey.MaxSigned+1), now, "limit"},
	}
	for _, tc := range rejected {
		r := w.prekeyEntry(tc.signer, tc.payload, tc.at)
		wantRejected(t, r, tc.want)
		if w.s.Prekey(bob.Public().Sign) != nil || w.s.Prekey(carol.Public().Sign) != nil ||
			!bytes.Equal(w.s.Prekey(alice.Public().Sign), first) {
			t.Fatalf("%s: a rejected entry changed a prekey", tc.name)
		}
	}

	// A newer one replaces it.
	second := genPrekey(t, alice, now)
	if r := w.prekeyEntry(alice, second, now.Add(time.Second)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if !bytes.Equal(w.s.Prekey(alice.Public().Sign), second) {
		t.Fatal("alice's newer prekey did not replace the first")
	}
	bobs := genPrekey(t, bob, now.Add(-time.Minute))
	if r := w.prekeyEntry(bob, bobs, now); r.Err != nil {
		t.Fatal(r.Err)
	}

	// The snapshot keeps them, and restores to the same bytes.
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Restore(w.group, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Prekey(bob.Public().Sign), bobs) || back.Prekey(carol.Public().Sign) != nil {
		t.Fatal("the snapshot lost or invented a prekey")
	}
	again, _ := back.Snapshot()
	if !bytes.Equal(snap, again) {
		t.Fatal("a restored snapshot encodes differently")
	}

	// Bob leaves: his prekey goes with him.
	if r := w.conf(bob, crypto.TypeLeave, map[string]any{}, RaftID(bob.Public().Sign), Remove); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Prekey(bob.Public().Sign) != nil || len(w.s.Former[bob.Public().Sign].Prekey) != 0 {
		t.Fatal("a former member keeps a prekey")
	}
}

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

// rekeyAt appends signer's rekey entry signed at at.
func (w *world) rekeyAt(signer *identity.Identity, at time.Time) Result {
	w.t.Helper()
	w.ctr++
	f, err := crypto.Sign(signer, &crypto.Envelope{Type: crypto.TypeRekey, Group: w.group, Counter: w.ctr, Time: at.UnixNano(), Payload: []byte{0xa0}})
	if err != nil {
		w.t.Fatal(err)
	}
	return w.raw(f)
}

// TestRekeyInterval: a member that rekeys between messages would make every
// other member pay a new key header (about 1.2 KB per member) from its quota
// for each of its messages, and grow the log by as much: each member has a
// rekey accepted at most once an hour of the voters' clock, dating it ahead
// buys nothing, and a snapshot keeps the bound.
func TestRekeyInterval(t *testing.T) {
	w := newWorld(t, 3)
	w.genesis()
	for i := 1; i < 3; i++ {
		if r := w.join(i); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	alice, bob := w.ids[0], w.ids[1]
	now := time.Now()

	epoch := w.s.Epoch
	if r := w.rekeyAt(bob, now); r.Err != nil {
		t.Fatal(r.Err)
	}
	if w.s.Epoch == epoch {
		t.Fatal("an accepted rekey did not start an epoch")
	}
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := Restore(w.group, snap)
	if err != nil {
		t.Fatal(err)
	}

	// The flood: at once, and dated ahead of the group's clock.
	epoch = w.s.Epoch
	for _, at := range []time.Time{now.Add(time.Second), now.Add(30 * time.Minute), now.Add(2 * time.Hour)} {
		wantRejected(t, w.rekeyAt(bob, at), "rekey too soon")
		if w.s.Epoch != epoch {
			t.Fatalf("a rekey dated %s after the last started an epoch", at.Sub(now))
		}
	}
	// The restored state rejects it alike.
	f, err := crypto.Sign(bob, &crypto.Envelope{Type: crypto.TypeRekey, Group: w.group, Counter: w.ctr + 1, Time: now.Add(time.Minute).UnixNano(), Payload: []byte{0xa0}})
	if err != nil {
		t.Fatal(err)
	}
	wantRejected(t, restored.ApplyEntry(w.index+1, f), "rekey too soon")

	// Another member's first rekey is not held back by bob's.
	if r := w.rekeyAt(alice, now.Add(61*time.Minute)); r.Err != nil {
		t.Fatal(r.Err)
	}
	// An hour on the voters' clock later (alice is the one voter), bob may
	// ask again.
	if next := w.s.NextRekey(bob.Public().Sign); next == 0 || next > now.Add(61*time.Minute).UnixNano() {
		t.Fatalf("NextRekey = %v, want an hour after bob's first", time.Unix(0, next))
	}
	if r := w.rekeyAt(bob, now.Add(62*time.Minute)); r.Err != nil {
		t.Fatalf("bob's rekey an hour later: %v", r.Err)
	}
}
