package keys

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary file contents to Load. It must never panic, and
// whatever it accepts must survive a round trip: saved again and loaded, it is
// the same identity.
func FuzzLoad(f *testing.F) {
	id := testIdentity(f, 9)
	plain, _ := encode(id, SaveOptions{})
	sealed, _ := encode(id, SaveOptions{Passphrase: []byte("fuzz"), WorkFactor: testWorkFactor})
	f.Add(plain)
	f.Add(sealed)
	f.Add([]byte(id.SecretKey()))
	f.Add([]byte("# comment\n\n" + id.SecretKey() + "\r\n"))
	f.Add([]byte(""))
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n\n--- AAAA\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "identity")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// A crafted file can ask for any scrypt work factor; the cap keeps
		// each input fast without changing the parsing under test.
		got, err := load(path, passphrase("fuzz"), testWorkFactor+2)
		if err != nil {
			return
		}
		again, err := encode(got, SaveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		back, err := parse(again, nil, testWorkFactor)
		if err != nil {
			t.Fatalf("re-encoded identity does not parse: %v", err)
		}
		if !bytes.Equal(back.Private(), got.Private()) {
			t.Fatal("round trip changed the identity")
		}
	})
}
