package prekey_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/crypto/ratchet"
	"github.com/demes/demes/identity"
)

// These tests steal a device at the core level: the attacker copies
// everything a member keeps at time T (the identity, the prekey secrets and
// the ratchet states, as a key store would hold them) and everything that
// ever travelled (key headers, sealed messages), and tries to read.

var t0 = time.Unix(1700000000, 0)

const day = 24 * time.Hour

type device struct {
	id      *identity.Identity
	secrets *prekey.SecretSet
	recv    map[[prekey.KeyIDSize]byte]*ratchet.Receiver
}

func newDevice(t *testing.T, seed byte) *device {
	id, err := identity.FromSeed(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &device{id: id, secrets: prekey.NewSecretSet(), recv: map[[prekey.KeyIDSize]byte]*ratchet.Receiver{}}
}

func (d *device) me() [32]byte { return d.id.Public().Sign }

// rotate makes a new prekey valid from at, keeps its secret, and returns the
// published prekey as others verify it.
func (d *device) rotate(t *testing.T, at time.Time) *prekey.Prekey {
	p, s, err := prekey.Generate(d.id, at, prekey.DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	d.secrets.Add(s)
	q, err := prekey.Verify(p.Bytes(), at)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// learn opens a key header and starts a receiver for the key.
func (d *device) learn(header []byte, ctx prekey.KeyContext) error {
	key, err := prekey.OpenKey(header, ctx, d.me(), d.secrets)
	if err != nil {
		return err
	}
	r, err := ratchet.NewReceiver(&key, chainContext(ctx))
	clear(key[:])
	if err != nil {
		return err
	}
	d.recv[ctx.KeyID] = r
	return nil
}

// steal copies what the device keeps, through the exported forms a key
// store would persist, into a new device of the attacker's.
func (d *device) steal(t *testing.T, published map[[prekey.IDSize]byte]*prekey.Prekey) *device {
	a := &device{id: d.id, secrets: prekey.NewSecretSet(), recv: map[[prekey.KeyIDSize]byte]*ratchet.Receiver{}}
	for _, id := range d.secrets.IDs() {
		s, err := prekey.RestoreSecret(published[id], d.secrets.Secret(id).Seed())
		if err != nil {
			t.Fatal(err)
		}
		a.secrets.Add(s)
	}
	for kid, r := range d.recv {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if a.recv[kid], err = ratchet.RestoreReceiver(b); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// chainContext is what the ratchet is bound to: the key's context, encoded
// as a node would (any injective encoding does).
func chainContext(c prekey.KeyContext) []byte {
	b := append(c.Group[:], c.Sender[:]...)
	b = append(b, byte(c.Epoch>>56), byte(c.Epoch>>48), byte(c.Epoch>>40), byte(c.Epoch>>32),
		byte(c.Epoch>>24), byte(c.Epoch>>16), byte(c.Epoch>>8), byte(c.Epoch))
	return append(b, c.KeyID[:]...)
}

type sealedMsg struct {
	kid     [prekey.KeyIDSize]byte
	counter uint64
	sealed  []byte
}

// newKey makes alice's sender key for epoch, sealed to the given prekeys.
func newKey(t *testing.T, alice *device, epoch uint64, kid byte, to []*prekey.Prekey, at time.Time) (prekey.KeyContext, []byte, *ratchet.Sender) {
	ctx := prekey.KeyContext{Group: [16]byte{0x67}, Sender: alice.me(), Epoch: epoch, KeyID: [prekey.KeyIDSize]byte{kid}}
	key := [prekey.KeySize]byte{kid, 0x4b, byte(epoch)} // fixed for the test; real keys are random
	h, err := prekey.SealKey(ctx, &key, to, at)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ratchet.NewSender(&key, chainContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	clear(key[:])
	return ctx, h, s
}

func send(t *testing.T, s *ratchet.Sender, kid [prekey.KeyIDSize]byte, text string) sealedMsg {
	c, sealed, err := s.Seal([]byte(text), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sealedMsg{kid: kid, counter: c, sealed: sealed}
}

func (d *device) read(m sealedMsg) ([]byte, error) {
	r := d.recv[m.kid]
	if r == nil {
		return nil, errors.New("no receiver for the key")
	}
	return r.Open(m.counter, m.sealed, nil)
}

// TestStolenDeviceForwardSecrecy: what bob read and deleted before the
// theft stays unreadable with everything taken from his device.
func TestStolenDeviceForwardSecrecy(t *testing.T) {
	alice, bob := newDevice(t, 1), newDevice(t, 2)
	published := map[[prekey.IDSize]byte]*prekey.Prekey{}
	bobPK := bob.rotate(t, t0)
	published[bobPK.ID] = bobPK

	// Week 0: alice's key 1, sealed to bob's first prekey; bob reads
	// messages 0 to 4 and skips 5 (still on its way).
	ctx1, h1, s1 := newKey(t, alice, 1, 1, []*prekey.Prekey{bobPK}, t0)
	if err := bob.learn(h1, ctx1); err != nil {
		t.Fatal(err)
	}
	var old []sealedMsg
	for _, text := range []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6"} {
		old = append(old, send(t, s1, ctx1.KeyID, text))
	}
	for i, m := range old {
		if i == 5 {
			continue
		}
		if _, err := bob.read(m); err != nil {
			t.Fatalf("bob reads %d: %v", i, err)
		}
	}
	// Week 1: bob rotates; after the grace period, he deletes the first
	// prekey's secret.
	bobPK2 := bob.rotate(t, t0.Add(7*day))
	published[bobPK2.ID] = bobPK2
	gone := bob.secrets.Expire(t0.Add(prekey.DefaultLifetime+day), day)
	if len(gone) != 1 || gone[0] != bobPK.ID {
		t.Fatalf("expire deleted %x, want bob's first prekey", gone)
	}

	// T: the device is stolen.
	thief := bob.steal(t, published)

	// The thief reads none of the messages bob opened: their keys are
	// deleted, and the chain key he holds is past them.
	for i, m := range old {
		if i == 5 {
			continue
		}
		if _, err := thief.read(m); !errors.Is(err, ratchet.ErrReplay) {
			t.Errorf("thief reads message %d bob had read: %v", i, err)
		}
	}
	// Nor can he start the chain again from the key header: the prekey
	// secret it is sealed to is deleted.
	if err := thief.learn(h1, ctx1); !errors.Is(err, prekey.ErrNoSecret) {
		t.Errorf("thief opens the old key header: %v", err)
	}
	// Not even with the identity key: the header is not sealed to it, and
	// no secret the thief holds opens bob's stanza.
	for _, id := range thief.secrets.IDs() {
		one := prekey.NewSecretSet()
		one.Add(thief.secrets.Secret(id))
		if _, err := prekey.OpenKey(h1, ctx1, bob.me(), one); err == nil {
			t.Errorf("prekey %x opens the old header", id[:4])
		}
	}
	// What bob had not read yet (message 5, skipped) the thief can read:
	// a key kept is a key stolen. That is the window's price.
	if pt, err := thief.read(old[5]); err != nil || string(pt) != "m5" {
		t.Errorf("skipped message 5: %q, %v (the thief holds its key)", pt, err)
	}
}

// TestStolenDevicePostCompromise: after the theft, bob rotates his prekey
// (the thief, passive, does not see the new secret), and alice's next sender
// key, sealed to the new prekey, is out of the thief's reach.
func TestStolenDevicePostCompromise(t *testing.T) {
	alice, bob := newDevice(t, 1), newDevice(t, 2)
	published := map[[prekey.IDSize]byte]*prekey.Prekey{}
	bobPK := bob.rotate(t, t0)
	published[bobPK.ID] = bobPK
	ctx1, h1, s1 := newKey(t, alice, 1, 1, []*prekey.Prekey{bobPK}, t0)
	if err := bob.learn(h1, ctx1); err != nil {
		t.Fatal(err)
	}

	thief := bob.steal(t, published) // T

	// Before any rotation, the thief reads alice's current key: the theft
	// is not undone by itself.
	during := send(t, s1, ctx1.KeyID, "during")
	if pt, err := thief.read(during); err != nil || string(pt) != "during" {
		t.Fatalf("thief reads the current chain: %q, %v", pt, err)
	}
	if err := thief.learn(h1, ctx1); err != nil {
		t.Fatalf("thief opens the current header with the stolen secret: %v", err)
	}

	// Bob rotates (also on suspicion: demes rekey) and alice starts key 2
	// in the next epoch, sealed to his new prekey.
	bobPK2 := bob.rotate(t, t0.Add(time.Hour))
	published[bobPK2.ID] = bobPK2
	ctx2, h2, s2 := newKey(t, alice, 2, 2, []*prekey.Prekey{bobPK2}, t0.Add(time.Hour))
	if err := bob.learn(h2, ctx2); err != nil {
		t.Fatal(err)
	}
	after := send(t, s2, ctx2.KeyID, "after")
	if pt, err := bob.read(after); err != nil || string(pt) != "after" {
		t.Fatalf("bob reads the new key: %q, %v", pt, err)
	}
	if err := thief.learn(h2, ctx2); !errors.Is(err, prekey.ErrNoSecret) {
		t.Errorf("thief opens the header sealed to the new prekey: %v", err)
	}
	if _, err := thief.read(after); err == nil {
		t.Error("thief reads a message under the new key")
	}
}
