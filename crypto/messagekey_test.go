package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// TestOpenWithMessageKey: a message's key, as a transcript reveals it,
// opens that message exactly as the sender key does, and no other message
// of the same sender key, nor the message under another id or sender.
func TestOpenWithMessageKey(t *testing.T) {
	alice := testID(t, 1)
	key := testKey(alice, 5)
	m1, m2 := testMessage(), testMessage()
	m2.ID = [16]byte{0xee}
	s1, err := SealMessage(alice, m1, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SealMessage(alice, m2, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sender := alice.Public().Sign
	want, err := OpenMessage(key, testGroup, s1, sender, m1.ID)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := key.MessageKeyOf(s1, m1.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenWithMessageKey(mk, testGroup, s1, sender, m1.ID)
	if err != nil {
		t.Fatalf("its own key does not open it: %v", err)
	}
	if !bytes.Equal(got.Record, want.Record) || !bytes.Equal(got.Sig, want.Sig) || string(got.Body) != string(m1.Body) {
		t.Fatalf("opened %+v, want %+v", got, want)
	}
	if _, err := OpenWithMessageKey(mk, testGroup, s2, sender, m2.ID); !errors.Is(err, ErrMalformed) {
		t.Errorf("one message's key opens another of the same sender key: %v", err)
	}
	if _, err := OpenWithMessageKey(mk, testGroup, s1, testID(t, 2).Public().Sign, m1.ID); err == nil {
		t.Error("opens under another sender")
	}
	if _, err := OpenWithMessageKey(mk, testGroup, s1, sender, m2.ID); err == nil {
		t.Error("opens under another message id")
	}
	if k2 := key.MessageKey(m2.ID); k2 == mk {
		t.Error("two messages share a key")
	}
}

// TestPeekRecord: the record comes out of a message under its key without a
// signature check, and not under another key or id.
func TestPeekRecord(t *testing.T) {
	alice := testID(t, 1)
	key := testKey(alice, 5)
	m := testMessage()
	sealed, err := SealMessage(alice, m, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sender := alice.Public().Sign
	rec, err := PeekRecord(key, testGroup, sealed, sender, m.ID)
	if err != nil || !bytes.Equal(rec.Body, m.Body) || rec.Time != m.Time {
		t.Fatalf("PeekRecord = %+v, %v; want %q", rec, err, m.Body)
	}
	other := testKey(alice, 5)
	other.Key[0] ^= 1
	if _, err := PeekRecord(other, testGroup, sealed, sender, m.ID); err == nil {
		t.Error("another key of the same sender and epoch peeks into the message")
	}
	if _, err := PeekRecord(key, testGroup, sealed, sender, [16]byte{0xee}); err == nil {
		t.Error("the message peeks open under another id")
	}
}
