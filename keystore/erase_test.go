package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
)

// These tests take the part of a thief who copies the key store file and
// holds the identity: after a deletion, the file must not give the secret
// back, by decryption or by its old ciphertext.

// checkGone fails the test if the file at path still holds secret or any
// part of body, the record it was in before it was deleted.
func checkGone(t *testing.T, path string, s *Store, secret, body []byte) {
	t.Helper()
	if thiefFinds(t, path, s.id, secret) {
		t.Error("a record of the file still decrypts to the deleted secret")
	}
	raw := readFile(t, path)
	// Any 32 bytes of the old ciphertext are enough to look for.
	for i := nonceSize; i+32 <= len(body); i += 32 {
		if bytes.Contains(raw, body[i:i+32]) {
			t.Errorf("the file still holds the deleted record's ciphertext (bytes %d-%d of its body)", i, i+32)
			return
		}
	}
	if bytes.Contains(raw, body[:nonceSize]) {
		t.Error("the file still holds the deleted record's nonce")
	}
}

func TestDeleteIsReal(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	secret := secretOf("prekey seed 1 ", 32)
	put(t, s, "keep", "other")
	if err := s.Put("prekey/1", secret, zeroTime); err != nil {
		t.Fatal(err)
	}
	put(t, s, "keep2", "other2")
	if !thiefFinds(t, path, id, secret) {
		t.Fatal("the thief's scan does not find the secret before Delete: the test would prove nothing")
	}
	body := bodyOf(t, path, id, "prekey/1")
	if err := s.Delete("prekey/1"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, path, s, secret, body)
	// The records around it are intact.
	s.Close()
	s = openT(t, path, id)
	if got, _ := s.Get("keep2"); string(got) != "other2" {
		t.Errorf("keep2 = %q after the delete of its neighbour", got)
	}
}

func TestReplaceErasesOldValue(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	old := secretOf("chain key 0 ", 40_000)
	if err := s.Put("ratchet/x", old, zeroTime); err != nil {
		t.Fatal(err)
	}
	body := bodyOf(t, path, id, "ratchet/x")
	if err := s.Put("ratchet/x", secretOf("chain key 1 ", 40_000), zeroTime); err != nil {
		t.Fatal(err)
	}
	checkGone(t, path, s, old, body)
}

func TestDeletePrefixAndExpireAreReal(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	now := time.Unix(1_900_000_000, 0)
	var gone [][2][]byte
	for i := range 3 {
		sec := secretOf(fmt.Sprintf("group %d ", i), 64)
		if err := s.Put(fmt.Sprintf("g/%d", i), sec, zeroTime); err != nil {
			t.Fatal(err)
		}
		gone = append(gone, [2][]byte{sec, bodyOf(t, path, id, fmt.Sprintf("g/%d", i))})
		sec = secretOf(fmt.Sprintf("old prekey %d ", i), 64)
		if err := s.Put(fmt.Sprintf("p/%d", i), sec, now); err != nil {
			t.Fatal(err)
		}
		gone = append(gone, [2][]byte{sec, bodyOf(t, path, id, fmt.Sprintf("p/%d", i))})
	}
	if _, err := s.DeletePrefix("g/"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expire(now); err != nil {
		t.Fatal(err)
	}
	for _, g := range gone {
		checkGone(t, path, s, g[0], g[1])
	}
}

func TestSecretNeverInPlaintext(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	secret := secretOf("PLAINTEXT-SECRET ", 200)
	name := "prekey/very-recognisable-name"
	if err := s.Put(name, secret, zeroTime); err != nil {
		t.Fatal(err)
	}
	put(t, s, "x", "y")
	if err := s.Delete("x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	raw := readFile(t, path)
	if bytes.Contains(raw, secret[:16]) {
		t.Error("the secret is in the file in plaintext")
	}
	if bytes.Contains(raw, []byte(name)) {
		t.Error("the name is in the file in plaintext")
	}
}

// TestThiefSeesMarkedOnlyRecord shows that the checks above can fail: a
// record whose flag says erased but whose bytes are still there is found
// by the thief. It is the state a crash between the two syncs of an
// erasure leaves, and Open must finish the erasure.
func TestThiefSeesMarkedOnlyRecord(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	secret := secretOf("marked only ", 48)
	if err := s.Put("k", secret, zeroTime); err != nil {
		t.Fatal(err)
	}
	put(t, s, "after", "v")
	off := rawScan(t, path, id)[0].off
	s.Close()

	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{flagErased}, int64(off+4)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !thiefFinds(t, path, id, secret) {
		t.Fatal("the thief does not find a secret whose record was only marked erased")
	}

	s = openT(t, path, id)
	if _, ok := s.Get("k"); ok {
		t.Error("Open took a record marked erased for live")
	}
	if thiefFinds(t, path, id, secret) {
		t.Error("Open did not finish the erasure of a record marked erased")
	}
	if got, _ := s.Get("after"); string(got) != "v" {
		t.Errorf("after = %q", got)
	}
}

func TestCompactionIsReal(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	s.compactMin = 1 << 10
	keep := secretOf("kept ", 100)
	if err := s.Put("keep", keep, zeroTime); err != nil {
		t.Fatal(err)
	}
	var deleted [][2][]byte
	for i := range 20 {
		sec := secretOf(fmt.Sprintf("deleted %d ", i), 100)
		name := fmt.Sprintf("d/%d", i)
		if err := s.Put(name, sec, zeroTime); err != nil {
			t.Fatal(err)
		}
		deleted = append(deleted, [2][]byte{sec, bodyOf(t, path, id, name)})
	}
	// Hold the old file open, as a thief reading the freed blocks would.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldSize := int64(len(readFile(t, path)))

	if n, err := s.DeletePrefix("d/"); err != nil || n != 20 {
		t.Fatalf("DeletePrefix = %d, %v", n, err)
	}
	st, _ := os.Stat(path)
	if ost, _ := old.Stat(); os.SameFile(st, ost) {
		t.Fatal("no compaction happened: the test would prove nothing")
	}
	if st.Size() >= oldSize {
		t.Errorf("compacted file is %d bytes, the old one %d", st.Size(), oldSize)
	}
	for _, d := range deleted {
		checkGone(t, path, s, d[0], d[1])
	}
	// The old file, unlinked, was overwritten with zeros, live records
	// included: they could be deleted from the new file later.
	b := make([]byte, oldSize)
	if _, err := old.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if !allZero(b) {
		t.Error("the old file was not overwritten before it was let go")
	}
	for _, p := range []string{path + ".old", path + ".tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	s.Close()
	s = openT(t, path, id)
	if got, _ := s.Get("keep"); !bytes.Equal(got, keep) {
		t.Errorf("keep = %q after compaction and reopen", got)
	}
	if l := s.List(""); len(l) != 1 {
		t.Errorf("List = %v after compaction, want only keep", l)
	}
}

// TestCompactionFailureKeepsErasure: when compaction cannot run (here a
// directory sits where its temporary file goes), Delete says so with
// ErrCompact, but the record was erased and the store goes on working.
func TestCompactionFailureKeepsErasure(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	s.compactMin = 1
	secret := secretOf("to delete ", 500)
	if err := s.Put("big", secret, zeroTime); err != nil {
		t.Fatal(err)
	}
	body := bodyOf(t, path, id, "big")
	if err := os.Mkdir(path+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.Delete("big")
	if !errors.Is(err, ErrCompact) {
		t.Fatalf("Delete with compaction blocked: %v, want ErrCompact", err)
	}
	checkGone(t, path, s, secret, body)
	put(t, s, "after", "v")
	if err := os.Remove(path + ".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(); err != nil {
		t.Fatalf("Compact once unblocked: %v", err)
	}
	s.Close()
	s = openT(t, path, id)
	if got := names(s.List("")); len(got) != 1 || got[0] != "after" {
		t.Errorf("entries %v, want only after", got)
	}
}

// TestPutManyErasesOldValues: PutMany replaces several values at once and
// erases every record it replaces, a name given twice included; the store
// reads the new values back after a reopen.
func TestPutManyErasesOldValues(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	var olds, bodies [][]byte
	for _, name := range []string{"sender/a", "sender/b"} {
		old := secretOf("chain key 0 of "+name+" ", 2_000)
		if err := s.Put(name, old, zeroTime); err != nil {
			t.Fatal(err)
		}
		olds, bodies = append(olds, old), append(bodies, bodyOf(t, path, id, name))
	}
	put(t, s, "keep", "other")
	twice := secretOf("first of two ", 2_000)
	if err := s.PutMany([]Item{
		{Name: "sender/a", Secret: twice},
		{Name: "sender/b", Secret: []byte("chain key 9 of b")},
		{Name: "sender/c", Secret: []byte("new")},
	}); err != nil {
		t.Fatal(err)
	}
	bodyTwice := bodyOf(t, path, id, "sender/a")
	if err := s.PutMany([]Item{{Name: "sender/a", Secret: []byte("interim")}, {Name: "sender/a", Secret: []byte("chain key 9 of a")}}); err != nil {
		t.Fatal(err)
	}
	for i := range olds {
		checkGone(t, path, s, olds[i], bodies[i])
	}
	checkGone(t, path, s, twice, bodyTwice)
	if thiefFinds(t, path, id, []byte("interim")) {
		t.Error("the earlier of two items of one name is still in the file")
	}
	if err := s.PutMany([]Item{{Name: "sender/d", Secret: []byte("x")}, {Name: "", Secret: []byte("y")}}); err == nil {
		t.Fatal("PutMany took an empty name")
	}
	s.Close()
	s = openT(t, path, id)
	for name, want := range map[string]string{"sender/a": "chain key 9 of a", "sender/b": "chain key 9 of b", "sender/c": "new", "keep": "other"} {
		if got, _ := s.Get(name); string(got) != want {
			t.Errorf("%s = %q after a reopen, want %q", name, got, want)
		}
	}
	if _, ok := s.Get("sender/d"); ok {
		t.Error("a refused PutMany stored part of its items")
	}
}
