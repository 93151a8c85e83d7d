package crypto

import (
	"errors"
	"testing"

	"github.com/demes/demes/identity"
)

// sealFor seals a test message by author under key, with a key header to
// header (none if nil), and returns it with the name of its key as a reader
// reads it.
func sealFor(t *testing.T, author *identity.Identity, key *SenderKey, header ...*identity.Identity) (KeyRef, []byte) {
	t.Helper()
	var rs []identity.PublicID
	if header != nil {
		rs = publics(header...)
	}
	m := testMessage()
	m.Group = key.Group
	sealed, err := SealMessage(author, m, key, rs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadSealed(sealed)
	if err != nil {
		t.Fatal(err)
	}
	return KeyRef{Sender: author.Public().Sign, Epoch: info.Epoch, ID: info.KeyID}, sealed
}

func TestKeyRingOpen(t *testing.T) {
	alice, bob, carol := testID(t, 1), testID(t, 2), testID(t, 3)
	aliceKey := NewSenderKey(testGroup, alice.Public().Sign, 7)
	otherGroup := GroupID{0xee}
	tests := []struct {
		name   string
		seal   func(t *testing.T) (KeyRef, []byte) // the message bob opens
		ref    func(KeyRef) KeyRef                 // the name bob asks for; nil: as read
		want   error                               // nil: the ring opens aliceKey
		inRing bool                                // bob's ring holds the key afterwards
	}{
		{
			name:   "header to me",
			seal:   func(t *testing.T) (KeyRef, []byte) { return sealFor(t, alice, aliceKey, alice, bob) },
			inRing: true,
		},
		{
			name: "header not to me",
			seal: func(t *testing.T) (KeyRef, []byte) { return sealFor(t, alice, aliceKey, alice, carol) },
			want: ErrNotRecipient,
		},
		{
			name: "no header, key never learnt",
			seal: func(t *testing.T) (KeyRef, []byte) { return sealFor(t, alice, aliceKey) },
			want: ErrNoHeader, // and ErrNotRecipient, checked below
		},
		{
			name: "sent by another member",
			seal: func(t *testing.T) (KeyRef, []byte) {
				ref, sealed := sealFor(t, alice, aliceKey, bob)
				ref.Sender = carol.Public().Sign
				return ref, sealed
			},
			want: ErrAuthorMismatch,
		},
		{
			name: "key of another group",
			seal: func(t *testing.T) (KeyRef, []byte) {
				return sealFor(t, alice, NewSenderKey(otherGroup, alice.Public().Sign, 7), bob)
			},
			want: ErrWrongGroup,
		},
		{
			name: "asked for another epoch",
			seal: func(t *testing.T) (KeyRef, []byte) { return sealFor(t, alice, aliceKey, bob) },
			ref:  func(r KeyRef) KeyRef { r.Epoch++; return r },
			want: ErrWrongKey,
		},
		{
			name: "malformed message",
			seal: func(t *testing.T) (KeyRef, []byte) { return aliceKey.Ref(), []byte("not sealed") },
			want: ErrMalformed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ring := NewKeyRing(bob, testGroup)
			ref, sealed := tc.seal(t)
			if tc.ref != nil {
				ref = tc.ref(ref)
			}
			k, err := ring.Open(ref, sealed)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("Open = %v, want success", err)
			case tc.want == nil && (k == nil || !k.Equal(aliceKey)):
				t.Fatalf("Open = %+v, want alice's key", k)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Open = %v, want %v", err, tc.want)
			case tc.want == ErrNoHeader && !errors.Is(err, ErrNotRecipient):
				t.Fatalf("Open = %v, want %v too", err, ErrNotRecipient)
			}
			if got := ring.Lookup(ref) != nil; got != tc.inRing {
				t.Fatalf("after Open, Lookup found the key: %v, want %v", got, tc.inRing)
			}
		})
	}
}

// TestKeyRingLearnOnce checks that a key learnt from one message's header
// opens the later messages without a header, which is what the header is
// sent once for.
func TestKeyRingLearnOnce(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	key := NewSenderKey(testGroup, alice.Public().Sign, 7)
	ring := NewKeyRing(bob, testGroup)
	ref, first := sealFor(t, alice, key, alice, bob)
	_, later := sealFor(t, alice, key)
	if _, err := ring.Open(ref, later); !errors.Is(err, ErrNotRecipient) {
		t.Fatalf("Open before the header = %v, want %v", err, ErrNotRecipient)
	}
	for _, sealed := range [][]byte{first, later} {
		k, err := ring.Open(ref, sealed)
		if err != nil {
			t.Fatal(err)
		}
		m := testMessage()
		if _, err := OpenMessage(k, testGroup, sealed, alice.Public().Sign, m.ID); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyRingForget(t *testing.T) {
	alice, bob := testID(t, 1), testID(t, 2)
	// bob knows alice's keys of epochs 3 and 7 and his own of epochs 3
	// and 7, learnt from their headers.
	ring := NewKeyRing(bob, testGroup)
	refs := map[string]KeyRef{}
	for name, k := range map[string]*SenderKey{
		"alice 3": NewSenderKey(testGroup, alice.Public().Sign, 3),
		"alice 7": NewSenderKey(testGroup, alice.Public().Sign, 7),
		"bob 3":   NewSenderKey(testGroup, bob.Public().Sign, 3),
		"bob 7":   NewSenderKey(testGroup, bob.Public().Sign, 7),
	} {
		author := alice
		if k.Sender == bob.Public().Sign {
			author = bob
		}
		ref, sealed := sealFor(t, author, k, alice, bob)
		if _, err := ring.Open(ref, sealed); err != nil {
			t.Fatal(err)
		}
		refs[name] = ref
	}
	tests := []struct {
		name   string
		forget func(*KeyRing)
		kept   []string
	}{
		{"nothing", func(*KeyRing) {}, []string{"alice 3", "alice 7", "bob 3", "bob 7"}},
		{"epoch 7 starts", func(r *KeyRing) { r.Forget(7) }, []string{"alice 7", "bob 3", "bob 7"}},
		{"epoch 8 starts", func(r *KeyRing) { r.Forget(8) }, []string{"bob 3", "bob 7"}},
		{"own keys too", func(r *KeyRing) { r.Forget(7); r.ForgetOwn(7) }, []string{"alice 7", "bob 7"}},
		{"only own keys", func(r *KeyRing) { r.ForgetOwn(8) }, []string{"alice 3", "alice 7"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &KeyRing{me: ring.me, self: ring.self, group: ring.group, keys: map[KeyRef]*SenderKey{}}
			for ref, k := range ring.keys {
				r.keys[ref] = k
			}
			tc.forget(r)
			kept := map[string]bool{}
			for _, name := range tc.kept {
				kept[name] = true
			}
			for name, ref := range refs {
				if got := r.Lookup(ref) != nil; got != kept[name] {
					t.Errorf("Lookup(%s) found: %v, want %v", name, got, kept[name])
				}
				// Another epoch's key of the same sender and id is
				// another key.
				other := ref
				other.Epoch++
				if r.Lookup(other) != nil {
					t.Errorf("Lookup(%s) in epoch %d found a key", name, other.Epoch)
				}
			}
		})
	}
}

func TestKeyRingSealingKey(t *testing.T) {
	bob := testID(t, 2)
	tests := []struct {
		name string
		// restart is true for a ring that learnt bob's epoch-7 key from
		// its header, as after a restart, rather than making it.
		restart bool
		// registered reports whether the group registered the epoch-7 key.
		registered bool
		epoch      uint64
		wantSame   bool // SealingKey(epoch) returns the epoch-7 key
	}{
		{"same epoch", false, false, 7, true},
		{"same epoch, registered", false, true, 7, true},
		{"new epoch", false, true, 8, false},
		{"after a restart, registered", true, true, 7, true},
		{"after a restart, not registered", true, false, 7, false},
		{"after a restart, new epoch", true, true, 8, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ring := NewKeyRing(bob, testGroup)
			var k7 *SenderKey
			if tc.restart {
				k7 = NewSenderKey(testGroup, bob.Public().Sign, 7)
				ref, sealed := sealFor(t, bob, k7, bob)
				if _, err := ring.Open(ref, sealed); err != nil {
					t.Fatal(err)
				}
			} else {
				k7 = ring.SealingKey(7, nil)
			}
			reg := func(id [KeyIDSize]byte) bool { return tc.registered && id == k7.ID }
			k := ring.SealingKey(tc.epoch, reg)
			switch {
			case k.Epoch != tc.epoch || k.Sender != bob.Public().Sign || k.Group != testGroup:
				t.Fatalf("SealingKey(%d) = key of %x, epoch %d, group %s", tc.epoch, k.Sender[:4], k.Epoch, k.Group)
			case (k.Equal(k7)) != tc.wantSame:
				t.Fatalf("SealingKey(%d) is the epoch-7 key: %v, want %v", tc.epoch, k.Equal(k7), tc.wantSame)
			case ring.SealingKey(tc.epoch, nil) != k:
				t.Fatal("the sealing key changed within an epoch")
			case ring.Lookup(k.Ref()) != k:
				t.Fatal("the ring does not hold its sealing key, to open the owner's messages with")
			}
		})
	}
}
