package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/demes/demes/identity"
)

func TestKeygen(t *testing.T) {
	t.Parallel()
	home := filepath.Join(t.TempDir(), "home") // keygen creates it
	r := runDemes(t, nil, "keygen", "--home", home)
	wantExit(t, r, 0)
	pub, err := identity.ParsePublicID(r.lastLine())
	if err != nil {
		t.Fatalf("last line of keygen is not a public id: %v\n%v", err, r)
	}
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{home: 0o700, filepath.Join(home, "identity"): 0o600} {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != want {
				t.Errorf("%s has mode %04o, want %04o", path, st.Mode().Perm(), want)
			}
		}
	}

	// id prints the same public id.
	r = runDemes(t, nil, "id", "--home", home)
	wantExit(t, r, 0)
	if r.lastLine() != pub.String() {
		t.Errorf("id printed %q, keygen %q", r.lastLine(), pub)
	}

	// A second keygen must not destroy the identity...
	r = runDemes(t, nil, "keygen", "--home", home)
	wantExit(t, r, 1)
	wantStderr(t, r, "demes: error: an identity already exists", "demes: hint: ", "--force")
	if r.stdout != "" {
		t.Errorf("refused keygen printed %q", r.stdout)
	}
	if got := runDemes(t, nil, "id", "--home", home).lastLine(); got != pub.String() {
		t.Fatalf("refused keygen changed the identity")
	}
	// ...unless forced.
	r = runDemes(t, nil, "keygen", "--force", "--home", home)
	wantExit(t, r, 0)
	if r.lastLine() == pub.String() {
		t.Error("keygen --force kept the old identity")
	}
	if got := runDemes(t, nil, "id", "--home", home).lastLine(); got != r.lastLine() {
		t.Errorf("after keygen --force, id prints %q, want %q", got, r.lastLine())
	}
}

func TestIDJSON(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	// Flags after the command in any order.
	r := runDemes(t, nil, "keygen", "--name", "Ada Lovelace", "--home", home)
	wantExit(t, r, 0)
	pub := r.lastLine()

	r = runDemes(t, nil, "id", "--home", home, "--json")
	wantExit(t, r, 0)
	var got map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("id --json: %v\n%s", err, r.stdout)
	}
	p, _ := identity.ParsePublicID(pub)
	want := map[string]string{
		"public_id":     pub,
		"fingerprint":   p.Fingerprint(),
		"age_recipient": p.AgeRecipient(),
		"name":          "Ada Lovelace",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("id --json %s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["age_recipient"], "age1") {
		t.Errorf("age_recipient %q is not an age recipient", got["age_recipient"])
	}
	if st, err := os.Stat(filepath.Join(home, "profile.json")); err != nil {
		t.Error(err)
	} else if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("profile.json mode %04o, want 0600", st.Mode().Perm())
	}
}

func TestKeygenBadName(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	r := runDemes(t, nil, "keygen", "--home", home, "--name", "evil\x1b[2J")
	wantExit(t, r, 2)
	wantStderr(t, r, "control characters")
	if _, err := os.Stat(filepath.Join(home, "identity")); err == nil {
		t.Error("keygen with a bad name still wrote the identity")
	}
}

func TestHomeFromEnv(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	r := runDemes(t, []string{"DEMES_HOME=" + home}, "keygen")
	wantExit(t, r, 0)
	if _, err := os.Stat(filepath.Join(home, "identity")); err != nil {
		t.Fatalf("keygen with DEMES_HOME: %v", err)
	}
	// --home wins over DEMES_HOME.
	other := t.TempDir()
	r = runDemes(t, []string{"DEMES_HOME=" + home}, "id", "--home", other)
	wantExit(t, r, 1)
	wantStderr(t, r, "no identity in "+other, "demes keygen --home "+other)
}

func TestSealedIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongFile, []byte("battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := runDemes(t, nil, "keygen", "--home", home, "--passphrase-file", passFile)
	wantExit(t, r, 0)
	pub := r.lastLine()
	data, err := os.ReadFile(filepath.Join(home, "identity"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "BEGIN AGE ENCRYPTED FILE") || strings.Contains(string(data), identity.SecretHRP) {
		t.Fatalf("sealed identity file is not an armored age file:\n%s", data)
	}

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want []string
	}{
		{"no passphrase", nil, nil, 1, []string{"sealed with a passphrase", "demes: hint: ", "--passphrase-file", "DEMES_PASSPHRASE_FILE"}},
		{"flag", nil, []string{"--passphrase-file", passFile}, 0, nil},
		{"env", []string{"DEMES_PASSPHRASE_FILE=" + passFile}, nil, 0, nil},
		{"flag wins over env", []string{"DEMES_PASSPHRASE_FILE=" + wrongFile}, []string{"--passphrase-file", passFile}, 0, nil},
		{"wrong passphrase", nil, []string{"--passphrase-file", wrongFile}, 1, []string{"wrong passphrase", "demes: hint: check the passphrase in " + wrongFile}},
		{"missing passphrase file", nil, []string{"--passphrase-file", filepath.Join(dir, "nope")}, 1, []string{"passphrase file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runDemes(t, tc.env, append([]string{"id", "--home", home}, tc.args...)...)
			wantExit(t, r, tc.code)
			wantStderr(t, r, tc.want...)
			if tc.code == 0 && r.lastLine() != pub {
				t.Errorf("id printed %q, want %q", r.lastLine(), pub)
			}
			for _, secret := range []string{"correct horse", "battery staple"} {
				if strings.Contains(r.stderr+r.stdout, secret) {
					t.Errorf("output shows the passphrase %q", secret)
				}
			}
		})
	}
}

func TestKeygenEmptyPassphrase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("\n"), 0o600)
	r := runDemes(t, nil, "keygen", "--home", filepath.Join(dir, "home"), "--passphrase-file", passFile)
	wantExit(t, r, 1)
	wantStderr(t, r, "passphrase is empty")
	if _, err := os.Stat(filepath.Join(dir, "home", "identity")); err == nil {
		t.Error("keygen with an empty passphrase wrote an identity")
	}
}

func TestIdentityPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits on Windows")
	}
	t.Parallel()
	home := t.TempDir()
	wantExit(t, runDemes(t, nil, "keygen", "--home", home), 0)
	path := filepath.Join(home, "identity")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runDemes(t, nil, "id", "--home", home)
	wantExit(t, r, 1)
	wantStderr(t, r, "readable by other users", "demes: hint: chmod 600 "+path)
	os.Chmod(path, 0o600)
	wantExit(t, runDemes(t, nil, "id", "--home", home), 0)
}

func TestMalformedIdentity(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "identity"), []byte("not a key\n"), 0o600)
	r := runDemes(t, nil, "id", "--home", home)
	wantExit(t, r, 1)
	wantStderr(t, r, "malformed identity file", "demes: hint: ")
}
