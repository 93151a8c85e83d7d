package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
)

// Red-team attacks on demes restore with backups crafted by someone else.
// An age file sealed to an identity needs only its public recipient, which
// every member of its groups knows: anyone can make a file that decrypts
// with the victim's identity.

// A backup sealed to the victim's identity that holds the attacker's
// identity (and store) is refused: restored, the victim's home would run as
// the attacker, whose private key the attacker holds. A backup that demes
// backup seals to an identity always holds that identity.
func TestRestoreRefusesAnotherIdentitySealedToTheHomes(t *testing.T) {
	t.Parallel()
	attacker := makeBackupParts(t)
	victim, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	to, err := victim.Public().Recipient()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "x.backup")
	if err := os.WriteFile(file, attacker.seal(t, to), 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(t.TempDir(), "home")
	os.Mkdir(home, 0o700)
	if err := keys.Save(filepath.Join(home, identityFile), victim, keys.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, storeFile), []byte("the old store"), 0o600)
	before := snapshotDir(t, home)

	r := runDemes(t, nil, "restore", file, "--home", home, "--force")
	wantExit(t, r, 1)
	wantStderr(t, r, "holds identity "+attacker.id.Public().String()+", not "+victim.Public().String())
	after := snapshotDir(t, home)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the refused restore changed the home")
	}

	// The same with the victim's identity given with --identity, into a
	// new home.
	idFile := filepath.Join(home, identityFile)
	r = runDemes(t, nil, "restore", file, "--home", filepath.Join(t.TempDir(), "new"), "--identity", idFile)
	wantExit(t, r, 1)
	wantStderr(t, r, "holds identity "+attacker.id.Public().String())
}

// A sealed identity cannot be read without its passphrase, so a backup
// sealed to the victim could carry any file that looks sealed, under a
// manifest naming the victim. The identity in a backup sealed to an
// identity must open with that identity's passphrase and be it; the
// victim's own backup of a sealed identity still restores.
func TestRestoreChecksASealedIdentitySealedToTheHomes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("victim's\n"), 0o600)
	p := makeBackupParts(t)
	victimFile := filepath.Join(dir, "victim-identity")
	if err := keys.Save(victimFile, p.id, keys.SaveOptions{Passphrase: []byte("victim's"), WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	to, err := p.id.Public().Recipient()
	if err != nil {
		t.Fatal(err)
	}
	restore := func(idFile []byte) result {
		q := p
		q.idFile = idFile
		file := filepath.Join(t.TempDir(), "x.backup")
		os.WriteFile(file, q.seal(t, to), 0o600)
		return runDemes(t, nil, "restore", file, "--home", filepath.Join(t.TempDir(), "home"),
			"--identity", victimFile, "--passphrase-file", pass)
	}

	r := restore([]byte("age-encryption.org/v1\nnot an identity\n"))
	wantExit(t, r, 1)
	wantStderr(t, r, "the backup's identity does not open with the passphrase of "+p.id.Public().String())

	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(dir, "other-identity")
	if err := keys.Save(otherFile, other, keys.SaveOptions{Passphrase: []byte("victim's"), WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	r = restore([]byte(mustRead(t, otherFile)))
	wantExit(t, r, 1)
	wantStderr(t, r, "the backup's identity is "+other.Public().String()+", not "+p.id.Public().String())

	r = restore([]byte(mustRead(t, victimFile)))
	wantExit(t, r, 0)
	wantStderr(t, r, "--passphrase-file F")
}
