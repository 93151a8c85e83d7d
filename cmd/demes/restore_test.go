package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
	"github.com/demes/demes/node/store"
)

// backupParts is what a backup holds, made without a serve: an identity
// file, a profile and a store with one group whose log spans several of
// age's 64 KiB chunks.
type backupParts struct {
	id       *identity.Identity
	idFile   []byte
	profile  []byte
	store    []byte
	manifest backupManifest
}

func makeBackupParts(t *testing.T) backupParts {
	t.Helper()
	dir := t.TempDir()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Save(filepath.Join(dir, identityFile), id, keys.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	idFile, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, storeFile))
	if err != nil {
		t.Fatal(err)
	}
	gid := []byte("0123456789abcdef")
	if err := st.CreateGroup(gid, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 100; i++ {
		e := &pb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Type: pb.EntryNormal.Enum(), Data: bytes.Repeat([]byte{byte(i)}, 2000)}
		if err := st.SaveRaft(gid, nil, []*pb.Entry{e}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := st.CopyTo(&buf, func(int64) {}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	return backupParts{
		id: id, idFile: idFile, profile: []byte(`{"name":"bob"}`), store: buf.Bytes(),
		manifest: backupManifest{Format: backupFormat, PublicID: id.Public().String(), CreatedAt: time.Now().UTC(), Version: "test", Groups: 1},
	}
}

// seal writes a backup of p sealed to r, as demes backup does.
func (p backupParts) seal(t *testing.T, r age.Recipient) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := writeBackup(&out, r, p.manifest, p.idFile, p.profile, bytes.NewReader(p.store), int64(len(p.store))); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// sealEntries seals a tar archive of the entries (name, content), for
// backups that demes backup would never write.
func sealEntries(t *testing.T, r age.Recipient, entries ...[2]string) []byte {
	t.Helper()
	var out bytes.Buffer
	aw, err := age.Encrypt(&out, r)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(aw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o600, Size: int64(len(e[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e[1]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func scryptTo(t *testing.T, pass string) age.Recipient {
	t.Helper()
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		t.Fatal(err)
	}
	r.SetWorkFactor(10)
	return r
}

// snapshotDir returns every file under dir with its mode and contents, to
// show that a refused restore changed nothing.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // a missing dir is an empty map
		}
		info, err := d.Info()
		if err != nil {
			t.Fatal(err)
		}
		b := ""
		if !d.IsDir() {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = string(data)
		}
		out[path] = info.Mode().String() + " " + b
		return nil
	})
	return out
}

// A backup that is damaged, cut short, sealed otherwise, or not a backup at
// all is refused with one error line (and a hint), exit 1, and the home is
// left as it was: not created when it did not exist, unchanged with --force.
func TestRestoreRefusesBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := makeBackupParts(t)
	good := p.seal(t, scryptTo(t, "right"))
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("right\n"), 0o600)
	wrongFile := filepath.Join(dir, "wrong")
	os.WriteFile(wrongFile, []byte("wrong\n"), 0o600)

	other, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Save(filepath.Join(dir, "bob-identity"), p.id, keys.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(dir, "other-identity")
	if err := keys.Save(otherFile, other, keys.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	toOther, err := other.Public().Recipient()
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(m backupManifest) string {
		b, _ := json.Marshal(m)
		return string(b)
	}
	future := p.manifest
	future.Format = backupFormat + 1
	scrypt := scryptTo(t, "right")
	flipped := append([]byte{}, good...)
	flipped[len(flipped)/2] ^= 1
	// The payload starts after the header's MAC line with a 16-byte
	// nonce, then chunks of 64 KiB plus a 16-byte tag; cutting the file
	// at a chunk boundary drops whole chunks, which only the last
	// chunk's flag reveals.
	payload := bytes.Index(good, []byte("\n---")) + 1
	payload += bytes.IndexByte(good[payload:], '\n') + 1 + 16
	chunk := 64<<10 + 16
	lastChunkGone := good[:payload+(len(good)-payload-1)/chunk*chunk]
	if len(lastChunkGone) <= payload {
		t.Fatalf("the test backup has one chunk (%d bytes); it needs several", len(good))
	}

	for _, tc := range []struct {
		name string
		data []byte
		args []string // besides FILE --home HOME
		want string   // in the error line
	}{
		{"wrong passphrase", good, []string{"--passphrase-file", wrongFile}, "wrong passphrase for"},
		{"no passphrase", good, nil, "is sealed with a passphrase"},
		{"cut in the header", good[:30], []string{"--passphrase-file", passFile}, "is not a demes backup"},
		{"cut after the header", good[:bytes.Index(good, []byte("\n---"))+60], []string{"--passphrase-file", passFile}, "is not a whole demes backup"},
		{"cut in a chunk", good[:len(good)/2], []string{"--passphrase-file", passFile}, "is not a whole demes backup"},
		{"last chunk missing", lastChunkGone, []string{"--passphrase-file", passFile}, "is not a whole demes backup"},
		{"one byte short", good[:len(good)-1], []string{"--passphrase-file", passFile}, "is not a whole demes backup"},
		{"one bit flipped", flipped, []string{"--passphrase-file", passFile}, "is not a whole demes backup"},
		{"empty file", nil, nil, "is not a demes backup: not an age-encrypted file"},
		{"text file", []byte("hello\n"), nil, "is not a demes backup: not an age-encrypted file"},
		{"sealed to another identity", p.seal(t, toOther), []string{"--identity", filepath.Join(dir, "bob-identity")}, "is sealed to another identity"},
		{"sealed to age, not demes", p.seal(t, x25519.Recipient()), []string{"--identity", otherFile}, "is sealed to another identity"},
		{"no manifest", sealEntries(t, scrypt, [2]string{"identity", string(p.idFile)}), []string{"--passphrase-file", passFile}, "is not a demes backup (no manifest)"},
		{"empty archive", sealEntries(t, scrypt), []string{"--passphrase-file", passFile}, "is not a demes backup (no manifest)"},
		{"newer format", sealEntries(t, scrypt, [2]string{manifestName, manifest(future)}), []string{"--passphrase-file", passFile}, "a backup of format 2; this demes reads format 1"},
		{"no store", sealEntries(t, scrypt, [2]string{manifestName, manifest(p.manifest)}, [2]string{identityFile, string(p.idFile)}),
			[]string{"--passphrase-file", passFile}, "it has no store.db"},
		{"a path out of the home", sealEntries(t, scrypt, [2]string{manifestName, manifest(p.manifest)}, [2]string{"../identity", string(p.idFile)}),
			[]string{"--passphrase-file", passFile}, `unexpected entry "../identity"`},
		{"not a store", sealEntries(t, scrypt, [2]string{manifestName, manifest(p.manifest)}, [2]string{identityFile, string(p.idFile)}, [2]string{storeFile, "not bbolt"}),
			[]string{"--passphrase-file", passFile}, "the backup's store"},
		{"someone else's identity", sealEntries(t, scrypt, [2]string{manifestName, manifest(p.manifest)}, [2]string{identityFile, mustRead(t, otherFile)}, [2]string{storeFile, string(p.store)}),
			[]string{"--passphrase-file", passFile}, "its manifest says"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.backup")
			if err := os.WriteFile(file, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			// Into a new home: nothing is created, parents included.
			top := filepath.Join(t.TempDir(), "new")
			home := filepath.Join(top, "dir", "home")
			r := runDemes(t, nil, append([]string{"restore", file, "--home", home}, tc.args...)...)
			wantExit(t, r, 1)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) > 2 || !strings.HasPrefix(lines[0], "demes: error: ") || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("want one error line with %q (and a hint), got:\n%s", tc.want, r.stderr)
			}
			if _, err := os.Stat(top); !os.IsNotExist(err) {
				t.Errorf("a refused restore left the home's directories behind: %v", err)
			}
			// Over an existing home, with --force: nothing changes.
			home = filepath.Join(t.TempDir(), "home")
			os.Mkdir(home, 0o750) // not the 0700 a restore sets: a refused one leaves it
			if err := keys.Save(filepath.Join(home, identityFile), p.id, keys.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(home, storeFile), []byte("the old store"), 0o600)
			before := snapshotDir(t, home)
			args := append([]string{"restore", file, "--home", home, "--force"}, tc.args...)
			if tc.name == "sealed to another identity" {
				// The home's identity, the default, is not the one either.
				args = args[:len(args)-2]
			}
			r = runDemes(t, nil, args...)
			wantExit(t, r, 1)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("over a home: stderr lacks %q:\n%s", tc.want, r.stderr)
			}
			after := snapshotDir(t, home)
			if len(after) != len(before) {
				t.Errorf("a refused restore changed the home's files: %d before, %d after: %v", len(before), len(after), after)
			}
			for path, b := range before {
				if after[path] != b {
					t.Errorf("a refused restore changed %s", path)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A good backup restores: the files are the ones backed up, owner-only;
// --force keeps what it replaces.
func TestRestoreWritesTheHome(t *testing.T) {
	t.Parallel()
	p := makeBackupParts(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.backup")
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("right"), 0o600)
	os.WriteFile(file, p.seal(t, scryptTo(t, "right")), 0o600)
	home := filepath.Join(dir, "deep", "home")
	r := runDemes(t, nil, "restore", file, "--home", home, "--passphrase-file", pass)
	wantExit(t, r, 0)
	if r.lastLine() != p.id.Public().String() {
		t.Errorf("restore printed %q, want the public id", r.lastLine())
	}
	for name, want := range map[string][]byte{identityFile: p.idFile, profileFile: p.profile} {
		got, err := os.ReadFile(filepath.Join(home, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want the %d bytes backed up", name, len(got), err, len(want))
		}
	}
	for _, name := range []string{identityFile, profileFile, storeFile} {
		if st, _ := os.Stat(filepath.Join(home, name)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o", name, st.Mode().Perm())
		}
	}
	checkRestoredStore(t, filepath.Join(home, storeFile))
	if st, _ := os.Stat(home); st.Mode().Perm() != 0o700 {
		t.Errorf("the home has mode %04o", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(home); len(entries) != 3 {
		t.Errorf("the home holds %d entries, want 3 (no staging left): %v", len(entries), entries)
	}

	if strings.Contains(r.stderr, "warning") {
		t.Errorf("a restore into a new home warns:\n%s", r.stderr)
	}

	// Again over it, with --force: the replaced files are kept. The old
	// key store among them is out of reach of the key retention policy,
	// which the warning says, with the command that deletes it.
	os.WriteFile(filepath.Join(home, storeFile), []byte("newer store"), 0o600)
	os.WriteFile(filepath.Join(home, keyStoreFile), []byte("old keys"), 0o600)
	r = runDemes(t, nil, "restore", file, "--home", home, "--passphrase-file", pass, "--force")
	wantExit(t, r, 0)
	kept, _ := filepath.Glob(filepath.Join(home, "replaced-*", storeFile))
	if len(kept) != 1 || mustRead(t, kept[0]) != "newer store" {
		t.Fatalf("the replaced store is not kept: %v", kept)
	}
	replaced := filepath.Dir(kept[0])
	wantStderr(t, r, "demes: warning: "+replaced+" holds the old key store: the key retention policy (serve --key-retention) no longer deletes the message keys in it",
		"Once you have checked that the restored node works, delete that directory: rm -r "+replaced+"\n")
	if mustRead(t, filepath.Join(replaced, keyStoreFile)) != "old keys" {
		t.Error("the old key store is not kept")
	}
	if got := mustRead(t, filepath.Join(home, storeFile)); got == "newer store" {
		t.Error("--force did not restore the store")
	}
	checkRestoredStore(t, filepath.Join(home, storeFile))
}

// checkRestoredStore checks that the store at path holds the group of
// makeBackupParts with its 100 entries, marked restored: the node holds
// its votes in that group until it has caught up (node/restored.go).
func checkRestoredStore(t *testing.T, path string) {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatalf("the restored store: %v", err)
	}
	defer st.Close()
	gid := []byte("0123456789abcdef")
	if first, last, err := st.LogBounds(gid); err != nil || first != 1 || last != 100 {
		t.Errorf("the restored store holds entries %d to %d (%v), want 1 to 100", first, last, err)
	}
	if marked, err := st.Restored(gid); err != nil || !marked {
		t.Errorf("the restored store's group is not marked restored (%v)", err)
	}
}

// The way to start the restored node, on stderr, gives the passphrase file
// that a sealed identity needs, and only then.
func TestRestoreSaysHowToServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("right"), 0o600)
	p := makeBackupParts(t)
	sealedID := filepath.Join(dir, "sealed-identity")
	if err := keys.Save(sealedID, p.id, keys.SaveOptions{Passphrase: []byte("the identity's"), WorkFactor: 10}); err != nil {
		t.Fatal(err)
	}
	sealed := p
	sealed.idFile = []byte(mustRead(t, sealedID))
	for name, tc := range map[string]struct {
		parts backupParts
		want  string
	}{
		"plain":  {p, " (with the same --listen or --advertise address as before); "},
		"sealed": {sealed, " --passphrase-file F (F: the file that holds the identity's passphrase, as it is sealed with one; with the same --listen"},
	} {
		file := filepath.Join(dir, name+".backup")
		os.WriteFile(file, tc.parts.seal(t, scryptTo(t, "right")), 0o600)
		home := filepath.Join(dir, name)
		r := runDemes(t, nil, "restore", file, "--home", home, "--passphrase-file", pass)
		wantExit(t, r, 0)
		wantStderr(t, r, "demes: start the node with: demes serve --home "+home+tc.want)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"home/replaced-20261206T073418Z-1": "home/replaced-20261206T073418Z-1",
		"/tmp/my home/replaced-1":          "'/tmp/my home/replaced-1'",
		"bob's/replaced-1":                 `'bob'\''s/replaced-1'`,
		"$HOME/x":                          "'$HOME/x'",
		"":                                 "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
