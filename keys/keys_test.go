package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/demes/demes/identity"
)

// testWorkFactor keeps scrypt fast in tests; real files use age's default.
const testWorkFactor = 10

func testIdentity(t testing.TB, b byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func passphrase(s string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(s), nil }
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pass   string
		sealed bool
	}{
		{name: "unsealed"},
		{name: "sealed", pass: "correct horse battery staple", sealed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := testIdentity(t, 1)
			path := filepath.Join(t.TempDir(), "identity")
			err := Save(path, id, SaveOptions{Passphrase: []byte(tc.pass), WorkFactor: testWorkFactor})
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
				t.Errorf("mode %04o, want 0600", st.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			if got := IsSealed(data); got != tc.sealed {
				t.Errorf("IsSealed = %v, want %v", got, tc.sealed)
			}
			if bytes.Contains(data, []byte(identity.SecretHRP)) == tc.sealed {
				t.Errorf("secret key text visible = %v in a file sealed = %v", !tc.sealed, tc.sealed)
			}
			if !tc.sealed && !strings.HasPrefix(string(data), "# DeMeS identity, public id: "+id.Public().String()+"\n") {
				t.Errorf("unsealed file does not start with the comment header:\n%s", data)
			}

			calls := 0
			got, err := Load(path, func() ([]byte, error) {
				calls++
				return []byte(tc.pass), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Private(), id.Private()) {
				t.Error("loaded identity differs from the saved one")
			}
			if want := map[bool]int{false: 0, true: 1}[tc.sealed]; calls != want {
				t.Errorf("passphrase asked %d times, want %d", calls, want)
			}
		})
	}
}

// A sealed file is a standard age file: the age CLI opens it with the
// passphrase, and its plaintext is the unsealed form.
func TestSealedIsAgeFile(t *testing.T) {
	id := testIdentity(t, 2)
	path := filepath.Join(t.TempDir(), "identity")
	if err := Save(path, id, SaveOptions{Passphrase: []byte("pw"), WorkFactor: testWorkFactor}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	sid, _ := age.NewScryptIdentity("pw")
	r, err := age.Decrypt(armor.NewReader(f), sid)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	plain.ReadFrom(r)
	got, err := parseText(plain.Bytes())
	if err != nil || !bytes.Equal(got.Private(), id.Private()) {
		t.Fatalf("plaintext does not parse back to the identity: %v", err)
	}
}

func TestSaveRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity")
	first, second := testIdentity(t, 1), testIdentity(t, 2)
	if err := Save(path, first, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	err := Save(path, second, SaveOptions{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second Save: %v, want ErrExists", err)
	}
	if got, err := Load(path, nil); err != nil || got.Public() != first.Public() {
		t.Fatalf("refused Save changed the file: %v", err)
	}
	if err := Save(path, second, SaveOptions{Force: true}); err != nil {
		t.Fatalf("Save with Force: %v", err)
	}
	if got, err := Load(path, nil); err != nil || got.Public() != second.Public() {
		t.Fatalf("Save with Force did not replace the identity: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the identity (no temporary files)", names)
	}
	st, _ := os.Stat(path)
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode after overwrite %04o, want 0600", st.Mode().Perm())
	}
}

func TestSaveErrors(t *testing.T) {
	id := testIdentity(t, 1)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		id   *identity.Identity
		opts SaveOptions
	}{
		{"no identity", filepath.Join(dir, "a"), nil, SaveOptions{}},
		{"missing directory", filepath.Join(dir, "nope", "identity"), id, SaveOptions{}},
		{"work factor too large", filepath.Join(dir, "b"), id, SaveOptions{Passphrase: []byte("x"), WorkFactor: 31}},
		{"negative work factor", filepath.Join(dir, "c"), id, SaveOptions{Passphrase: []byte("x"), WorkFactor: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Save(tc.path, tc.id, tc.opts); err == nil {
				t.Fatal("Save succeeded")
			}
			if _, err := os.Stat(tc.path); err == nil {
				t.Error("failed Save left a file")
			}
		})
	}
}

func TestLoadPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o660, false},
		{0o666, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "identity")
			if err := Save(path, testIdentity(t, 3), SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, nil)
			if tc.ok {
				if err != nil {
					t.Fatalf("Load of mode %04o: %v", tc.mode, err)
				}
				return
			}
			if !errors.Is(err, ErrPermissions) {
				t.Fatalf("Load of mode %04o: %v, want ErrPermissions", tc.mode, err)
			}
			if fix := "chmod 600 " + path; !strings.Contains(err.Error(), fix) {
				t.Errorf("error %q does not name the fix %q", err, fix)
			}
		})
	}
}

func TestLoadSealedErrors(t *testing.T) {
	id := testIdentity(t, 4)
	path := filepath.Join(t.TempDir(), "identity")
	if err := Save(path, id, SaveOptions{Passphrase: []byte("right"), WorkFactor: testWorkFactor}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pass func() ([]byte, error)
		want error
	}{
		{"no passphrase func", nil, ErrPassphraseNeeded},
		{"wrong passphrase", passphrase("wrong"), ErrWrongPassphrase},
		{"empty passphrase", passphrase(""), ErrWrongPassphrase},
		{"passphrase func fails", func() ([]byte, error) { return nil, errors.New("no terminal") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(path, tc.pass)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Load: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if strings.Contains(err.Error(), "right") {
				t.Errorf("error %q shows the passphrase", err)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity")
	_, err := Load(path, nil)
	if !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("Load: %v, want ErrNoIdentity", err)
	}
	if !strings.Contains(err.Error(), "demes keygen") {
		t.Errorf("error %q does not suggest demes keygen", err)
	}
}

func TestLoadMalformed(t *testing.T) {
	id := testIdentity(t, 5)
	key := id.SecretKey()
	other := testIdentity(t, 6)
	x25519, _ := age.GenerateX25519Identity()
	toX25519 := func() string {
		var buf bytes.Buffer
		aw := armor.NewWriter(&buf)
		w, _ := age.Encrypt(aw, x25519.Recipient())
		w.Write([]byte(key + "\n"))
		w.Close()
		aw.Close()
		return buf.String()
	}()
	sealedTwice := func() string {
		inner, _ := encode(id, SaveOptions{Passphrase: []byte("pw"), WorkFactor: testWorkFactor})
		var buf bytes.Buffer
		aw := armor.NewWriter(&buf)
		r, _ := age.NewScryptRecipient("pw")
		r.SetWorkFactor(testWorkFactor)
		w, _ := age.Encrypt(aw, r)
		w.Write(inner)
		w.Close()
		aw.Close()
		return buf.String()
	}()
	for _, tc := range []struct {
		name     string
		contents string
	}{
		{"empty", ""},
		{"only comments", "# DeMeS identity\n\n# nothing else\n"},
		{"garbage", "hello world\n"},
		{"public id instead of key", id.Public().String() + "\n"},
		{"age key instead", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"},
		{"truncated key", key[:len(key)-5] + "\n"},
		{"mistyped key", key[:20] + flip(key[20]) + key[21:] + "\n"},
		{"two keys", key + "\n" + other.SecretKey() + "\n"},
		{"armor header only", armor.Header + "\n"},
		{"armored garbage", armor.Header + "\nAAAA\n" + armor.Footer + "\n"},
		{"binary age header only", "age-encryption.org/v1\n"},
		{"encrypted to an X25519 key", toX25519},
		{"sealed twice", sealedTwice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "identity")
			if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, passphrase("pw"))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Load: %v, want ErrMalformed", err)
			}
			// Neither the key nor a recognisable part of it may leak.
			if strings.Contains(err.Error(), key[len(identity.SecretHRP)+1:][:12]) {
				t.Errorf("error %q shows part of the secret key", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'Q' {
		return "P"
	}
	return "Q"
}

func TestLoadAcceptsCommentsAndCRLF(t *testing.T) {
	id := testIdentity(t, 7)
	path := filepath.Join(t.TempDir(), "identity")
	contents := "# created: yesterday\r\n\r\n  " + id.SecretKey() + "  \r\n# trailing comment\r\n"
	if err := os.WriteFile(path, []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != id.Public() {
		t.Error("wrong identity")
	}
}

func TestReadPassphraseFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		contents string
		want     string
		wantErr  bool
	}{
		{"plain", "secret", "secret", false},
		{"trailing newline", "secret\n", "secret", false},
		{"trailing CRLF", "secret\r\n", "secret", false},
		{"only one newline trimmed", "secret\n\n", "secret\n", false},
		{"spaces kept", " secret ", " secret ", false},
		{"empty", "", "", true},
		{"only newline", "\n", "", true},
		{"too large", strings.Repeat("x", maxPassphraseFile+1), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(path, []byte(tc.contents), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPassphraseFile(path)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ReadPassphraseFile = %q, want an error", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ReadPassphraseFile = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ReadPassphraseFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile.json")
	p, err := LoadProfile(path)
	if err != nil || p != (Profile{}) {
		t.Fatalf("missing profile: %+v, %v; want empty, nil", p, err)
	}
	if err := SaveProfile(path, Profile{Name: "Ada Lovelace"}); err != nil {
		t.Fatal(err)
	}
	p, err = LoadProfile(path)
	if err != nil || p.Name != "Ada Lovelace" {
		t.Fatalf("LoadProfile = %+v, %v", p, err)
	}
	if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	for _, bad := range []string{"evil\x1b[2J", "two\nlines", strings.Repeat("x", MaxNameLen+1), "\xff"} {
		if err := SaveProfile(path, Profile{Name: bad}); err == nil {
			t.Errorf("SaveProfile(%q) succeeded", bad)
		}
	}
	os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := LoadProfile(path); err == nil {
		t.Error("malformed profile: no error")
	}
}
