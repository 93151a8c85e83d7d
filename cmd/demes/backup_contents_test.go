package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/demes/demes/keys"
)

// Someone who gets a backup and its passphrase (a cloud folder and a
// password manager, say) gets what it promises and nothing more: the
// identity file as it is in the home (still sealed with its own
// passphrase), the profile and a store that holds no plaintext, and neither
// the key store, the API token (which the browser's sessions derive from)
// nor serve.json. The store is backed up after a stop, so that it holds a
// snapshot and the board stored beside it (an edit, a reaction, a reply).
func TestBackupHoldsNothingBeyondItsPromise(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idPass := filepath.Join(dir, "id.pass")
	os.WriteFile(idPass, []byte("the identity's passphrase\n"), 0o600)
	backupPass := filepath.Join(dir, "backup.pass")
	os.WriteFile(backupPass, []byte("the backup's passphrase\n"), 0o600)

	p := newServeProc(t, "alice")
	wantExit(t, runDemes(t, nil, "keygen", "--home", p.home, "--force", "--passphrase-file", idPass, "--name", "alice"), 0)
	p.extra = []string{"--passphrase-file", idPass}
	p.start()
	wantExit(t, p.demes("group", "create", "book club"), 0)
	r := p.demes("send", "plaintext-of-a-message-3f9a")
	wantExit(t, r, 0)
	msgID := r.lastLine()
	wantExit(t, p.demes("edit", msgID, "plaintext-of-an-edit-7c21"), 0)
	wantExit(t, p.demes("react", msgID, "🦩"), 0)
	wantExit(t, p.demes("send", "--reply-to", msgID, "plaintext-of-a-reply-b06e"), 0)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	p.wait()
	p.start()

	out := filepath.Join(dir, "alice.backup")
	wantExit(t, p.demes("backup", "-o", out, "--passphrase-file", backupPass), 0)
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("the backup has mode %04o", info.Mode().Perm())
	}

	id, err := age.NewScryptIdentity("the backup's passphrase")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ar, err := age.Decrypt(f, id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(ar)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	entries := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		entries[hdr.Name] = b
		if hdr.Mode != 0o600 || hdr.Typeflag != tar.TypeReg {
			t.Errorf("%s: mode %o, type %q", hdr.Name, hdr.Mode, hdr.Typeflag)
		}
	}
	if got := strings.Join(names, " "); got != "demes-backup.json identity profile.json store.db" {
		t.Errorf("the backup holds %s", got)
	}
	home, err := os.ReadFile(filepath.Join(p.home, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	if !keys.IsSealed(entries[identityFile]) || !bytes.Equal(entries[identityFile], home) {
		t.Errorf("the backup's identity is not the home's sealed file as it is")
	}

	alice, err := keys.Load(filepath.Join(p.home, identityFile), func() ([]byte, error) { return []byte("the identity's passphrase"), nil })
	if err != nil {
		t.Fatal(err)
	}
	needles := secretNeedles(alice)
	token, err := os.ReadFile(filepath.Join(p.home, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	needles["the API token"] = strings.TrimSpace(string(token))
	for _, text := range []string{"plaintext-of-a-message-3f9a", "plaintext-of-an-edit-7c21", "plaintext-of-a-reply-b06e", "🦩", "the identity's passphrase", "the backup's passphrase"} {
		needles["the text "+text] = text
	}
	// What the README says it does hold in the clear: metadata, such as
	// the group's name.
	if !bytes.Contains(entries[storeFile], []byte("book club")) {
		t.Errorf("the store holds the group's name no longer in the clear: the README's Backups section says it does")
	}
	for what, needle := range needles {
		if bytes.Contains(plain, []byte(needle)) {
			t.Errorf("the backup holds %s", what)
		}
	}
}
