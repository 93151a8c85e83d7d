package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var zeroTime time.Time

func TestRoundTripAcrossReopen(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s, err := Open(path, id)
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	big := secretOf("ratchet", MaxSecret)
	if err := s.Put("prekey/a", []byte("seed-a"), when); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("ratchet/b", big, zeroTime); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("empty", nil, zeroTime); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, path, id)
	if got, ok := s.Get("prekey/a"); !ok || string(got) != "seed-a" {
		t.Errorf("Get(prekey/a) = %q, %v after reopen", got, ok)
	}
	if got, ok := s.Get("ratchet/b"); !ok || !bytes.Equal(got, big) {
		t.Errorf("Get(ratchet/b) = %d bytes, %v after reopen; want the %d stored", len(got), ok, len(big))
	}
	if got, ok := s.Get("empty"); !ok || len(got) != 0 {
		t.Errorf("Get(empty) = %q, %v", got, ok)
	}
	want := []Entry{{"empty", zeroTime}, {"prekey/a", when}, {"ratchet/b", zeroTime}}
	got := s.List("")
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !got[i].DeleteAfter.Equal(want[i].DeleteAfter) {
			t.Errorf("List[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if _, ok := s.Get("missing"); ok {
		t.Error("Get(missing) found something")
	}
}

func TestGetReturnsCopy(t *testing.T) {
	s := openT(t, storePath(t), testID(t, 1))
	in := []byte("secret")
	if err := s.Put("k", in, zeroTime); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	got, _ := s.Get("k")
	got[1] = 'Y'
	if again, _ := s.Get("k"); string(again) != "secret" {
		t.Errorf("the stored secret changed through a caller's slice: %q", again)
	}
}

func TestReplace(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	put(t, s, "k", "one")
	when := time.Unix(2_000_000_000, 0)
	if err := s.Put("k", []byte("two"), when); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("k"); string(got) != "two" {
		t.Errorf("Get = %q after replace, want two", got)
	}
	if l := s.List(""); len(l) != 1 || !l[0].DeleteAfter.Equal(when) {
		t.Errorf("List = %v after replace, want one entry deleted after %v", l, when)
	}
	s.Close()
	s = openT(t, path, id)
	if got, _ := s.Get("k"); string(got) != "two" {
		t.Errorf("Get = %q after replace and reopen, want two", got)
	}
}

func TestDelete(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	put(t, s, "a", "1")
	put(t, s, "b", "2")
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("never there"); err != nil {
		t.Errorf("Delete of a missing name: %v", err)
	}
	if _, ok := s.Get("a"); ok {
		t.Error("a still there after Delete")
	}
	s.Close()
	s = openT(t, path, id)
	if _, ok := s.Get("a"); ok {
		t.Error("a back after reopen")
	}
	if got, _ := s.Get("b"); string(got) != "2" {
		t.Errorf("b = %q, want 2", got)
	}
}

func TestDeletePrefix(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	for _, n := range []string{"prekey/1", "prekey/2", "prekeys", "ratchet/1"} {
		put(t, s, n, n)
	}
	n, err := s.DeletePrefix("prekey/")
	if err != nil || n != 2 {
		t.Fatalf("DeletePrefix = %d, %v; want 2", n, err)
	}
	s.Close()
	s = openT(t, path, id)
	if got := names(s.List("")); !slices.Equal(got, []string{"prekeys", "ratchet/1"}) {
		t.Errorf("left after DeletePrefix and reopen: %v", got)
	}
}

func TestExpire(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	now := time.Date(2027, 5, 1, 12, 0, 0, 0, time.UTC)
	for name, at := range map[string]time.Time{
		"past": now.Add(-time.Hour), "now": now, "future": now.Add(time.Nanosecond), "never": {},
	} {
		if err := s.Put(name, []byte(name), at); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Expire(now)
	if err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want 2 (past and now)", n, err)
	}
	s.Close()
	s = openT(t, path, id)
	if got := names(s.List("")); !slices.Equal(got, []string{"future", "never"}) {
		t.Errorf("left after Expire and reopen: %v", got)
	}
}

func TestListOrderAndPrefix(t *testing.T) {
	s := openT(t, storePath(t), testID(t, 1))
	for _, n := range []string{"b/2", "a", "b/10", "b/1", "c", "b"} {
		put(t, s, n, "x")
	}
	if got := names(s.List("")); !slices.Equal(got, []string{"a", "b", "b/1", "b/10", "b/2", "c"}) {
		t.Errorf("List(\"\") = %v", got)
	}
	if got := names(s.List("b/")); !slices.Equal(got, []string{"b/1", "b/10", "b/2"}) {
		t.Errorf("List(b/) = %v", got)
	}
	if got := s.List("zzz"); len(got) != 0 {
		t.Errorf("List(zzz) = %v", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	s.compactMin = 1 // compact often, under the others' feet
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				name := fmt.Sprintf("g%d/%d", g, i%5)
				val := fmt.Sprintf("v%d", i)
				if err := s.Put(name, []byte(val), zeroTime); err != nil {
					t.Error(err)
					return
				}
				if got, ok := s.Get(name); !ok || string(got) != val {
					t.Errorf("Get(%s) = %q, %v right after Put %q", name, got, ok, val)
				}
				s.List(fmt.Sprintf("g%d/", g))
				if i%7 == 0 {
					if err := s.Delete(name); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	want := s.List("")
	s.Close()
	s = openT(t, path, id)
	if got := s.List(""); !slices.Equal(names(got), names(want)) {
		t.Errorf("after reopen %v, before %v", names(got), names(want))
	}
}

func TestFileMode(t *testing.T) {
	path := storePath(t)
	openT(t, path, testID(t, 1))
	for _, p := range []string{path, path + ".lock"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", p, st.Mode().Perm())
		}
	}
}

func TestRefusesFileOthersCanRead(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, id)
	if !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Open of a 0644 store: %v, want ErrPermissions with the fix", err)
	}
}

func TestWrongIdentity(t *testing.T) {
	path := storePath(t)
	s := openT(t, path, testID(t, 1))
	put(t, s, "k", "v")
	s.Close()
	before := readFile(t, path)
	_, err := Open(path, testID(t, 2))
	if !errors.Is(err, ErrWrongIdentity) || !strings.Contains(err.Error(), "sealed to another identity") {
		t.Fatalf("Open with another identity: %v, want ErrWrongIdentity", err)
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Error("a failed Open changed the file")
	}
}

func TestNotAKeyStore(t *testing.T) {
	path := storePath(t)
	for _, content := range []string{"", "hello\n", "DeMeS key store v1\n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, testID(t, 1))
		if err == nil {
			t.Errorf("Open of %q succeeded", content)
		}
		if got := string(readFile(t, path)); got != content {
			t.Errorf("Open of %q changed it to %q", content, got)
		}
	}
}

func TestInvalidRejectedAndNothingChanges(t *testing.T) {
	path := storePath(t)
	s := openT(t, path, testID(t, 1))
	put(t, s, "k", "v")
	before := readFile(t, path)
	cases := []struct {
		what   string
		name   string
		secret []byte
		at     time.Time
	}{
		{"empty name", "", []byte("x"), zeroTime},
		{"name too long", strings.Repeat("n", MaxName+1), []byte("x"), zeroTime},
		{"secret too large", "k", make([]byte, MaxSecret+1), zeroTime},
		{"time out of range", "k", []byte("x"), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		err := s.Put(c.name, c.secret, c.at)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Put = %v, want ErrInvalid", c.what, err)
		}
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Error("refused Puts changed the file")
	}
	if got, _ := s.Get("k"); string(got) != "v" || len(s.List("")) != 1 {
		t.Errorf("refused Puts changed the store: k = %q, %v", got, s.List(""))
	}
	// The limits themselves are allowed.
	if err := s.Put(strings.Repeat("n", MaxName), make([]byte, MaxSecret), zeroTime); err != nil {
		t.Errorf("Put at the limits: %v", err)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path, id := storePath(t), testID(t, 1)
	s := openT(t, path, id)
	if _, err := Open(path, id); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	s.Close()
	openT(t, path, id) // the lock went with Close
}

func TestClosed(t *testing.T) {
	s := openT(t, storePath(t), testID(t, 1))
	put(t, s, "k", "v")
	s.Close()
	if err := s.Put("k", []byte("w"), zeroTime); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
	if err := s.Delete("k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Delete after Close: %v", err)
	}
	if _, ok := s.Get("k"); ok {
		t.Error("Get after Close found the secret")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func names(l []Entry) []string {
	var n []string
	for _, e := range l {
		n = append(n, e.Name)
	}
	return n
}
