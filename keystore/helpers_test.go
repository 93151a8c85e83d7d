package keystore

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
)

// testID returns the test identity of seed n n ... n.
func testID(t testing.TB, n byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{n}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// storePath returns a fresh path for a store in a temporary directory.
func storePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keys.store")
}

// openT opens the store at path and closes it when the test ends.
func openT(t testing.TB, path string, id *identity.Identity) *Store {
	t.Helper()
	s, err := Open(path, id)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t testing.TB, s *Store, name, secret string) {
	t.Helper()
	if err := s.Put(name, []byte(secret), zeroTime); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawRecord is one record of a file as the attacker's scanner below sees it.
type rawRecord struct {
	off    int
	flag   byte
	body   []byte // nonce || ciphertext, as in the file
	opened bool   // the body decrypts with the store key
	name   string
	secret []byte
}

// rawScan reads the file at path the way a thief holding the identity
// would, independently of the package's own reader: it opens the store key
// with age and tries to decrypt every record, whatever its flag says.
func rawScan(t testing.TB, path string, id *identity.Identity) []rawRecord {
	t.Helper()
	b := readFile(t, path)
	if !bytes.HasPrefix(b, []byte("DeMeS key store v1\n")) {
		t.Fatalf("%s: no magic", path)
	}
	p := len("DeMeS key store v1\n")
	n := int(binary.BigEndian.Uint16(b[p:]))
	r, err := age.Decrypt(bytes.NewReader(b[p+2:p+2+n]), id.AgeIdentity())
	if err != nil {
		t.Fatalf("thief cannot open the store key: %v", err)
	}
	key, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		t.Fatal(err)
	}
	var recs []rawRecord
	for o := p + 2 + n + 64; o+5 <= len(b); {
		l := int(binary.BigEndian.Uint32(b[o:]))
		if l < 40 || o+5+l > len(b) {
			t.Fatalf("%s: record at %d of length %d does not fit", path, o, l)
		}
		rec := rawRecord{off: o, flag: b[o+4], body: b[o+5 : o+5+l]}
		ad := binary.BigEndian.AppendUint64([]byte("DeMeS key store record v1\x00"), uint64(o))
		plain, err := aead.Open(nil, rec.body[:24], rec.body[24:], ad)
		if err == nil {
			rec.opened = true
			k := int(plain[0])
			rec.name = string(plain[1 : 1+k])
			rec.secret = plain[1+k+9:]
		}
		recs = append(recs, rec)
		o += 5 + l
	}
	return recs
}

// thiefFinds reports whether the thief's scan of path finds secret.
func thiefFinds(t testing.TB, path string, id *identity.Identity, secret []byte) bool {
	t.Helper()
	for _, r := range rawScan(t, path, id) {
		if r.opened && bytes.Equal(r.secret, secret) {
			return true
		}
	}
	return false
}

// bodyOf returns a copy of the body of the live record named name.
func bodyOf(t testing.TB, path string, id *identity.Identity, name string) []byte {
	t.Helper()
	for _, r := range rawScan(t, path, id) {
		if r.opened && r.name == name && r.flag == flagLive {
			return bytes.Clone(r.body)
		}
	}
	t.Fatalf("no live record %q in %s", name, path)
	return nil
}

// secretOf returns a recognisable secret of n bytes.
func secretOf(tag string, n int) []byte {
	b := bytes.Repeat([]byte(tag), n/len(tag)+1)
	return b[:n]
}
