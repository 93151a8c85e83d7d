package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"filippo.io/age"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/fsutil"
	"github.com/demes/demes/keys"
	"github.com/demes/demes/node/store"
)

// runRestore unpacks a backup into a home. Everything is decrypted, checked
// and written to a staging directory first; only a backup that is whole
// (age authenticates every byte, the end included) and that holds a
// readable identity and store is moved into the home. Any failure before
// that leaves the home as it was.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("restore FILE [--home DIR] [--force] [--passphrase-file F] [--identity FILE]", stdout)
	force := f.Bool("force", false, "restore into a home that is not empty; the files the backup replaces are kept in HOME/replaced-TIME-*/")
	passFile := f.String("passphrase-file", "", "the passphrase `FILE`: the backup's, for a backup sealed with a passphrase; "+
		"the identity's, for a backup sealed to a sealed identity (default $"+envPassphraseFile+")")
	idPath := f.String("identity", "", "for a backup sealed to an identity: that identity's `FILE` (default: the identity in the home)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the backup FILE"); err != nil {
		return err
	}
	file := pos[0]
	home, err := f.Home()
	if err != nil {
		return err
	}
	if err := checkRestoreTarget(home, *force); err != nil {
		return err
	}
	src, err := os.Open(file)
	if err != nil {
		return withHint(&fileError{"backup " + file, err}, "name the file that demes backup -o wrote")
	}
	defer src.Close()
	unseal, opener, err := backupIdentity(src, file, home, *passFile, *idPath)
	if err != nil {
		return err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info, err := src.Stat()
	if err != nil {
		return err
	}

	// Stage inside the home (created if need be), so that the renames
	// that put the files in place stay on one file system.
	created, err := ensureHome(home)
	if err != nil {
		return err
	}
	undo := func() {
		if created != "" {
			os.RemoveAll(created)
		}
	}
	stage, err := os.MkdirTemp(home, ".restore-*")
	if err != nil {
		undo()
		return fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(stage)
	m, err := unpackBackup(src, file, unseal, stage, info.Size())
	if err == nil && opener != nil && m.PublicID != opener.Public().String() {
		// Anyone who knows an identity's public id can seal a file to
		// it; demes backup seals a backup to its own identity only.
		err = failf("restore only a backup that demes backup made of this identity's home",
			"%s holds identity %s, not %s, to which it is sealed", file, m.PublicID, opener.Public())
	}
	var sealed bool
	if err == nil {
		m.Groups, sealed, err = checkStaged(stage, m, opener, *passFile)
	}
	if err == nil {
		// Its groups take part in no election until they caught up
		// (node/restored.go).
		err = store.MarkRestored(filepath.Join(stage, storeFile))
	}
	if err == nil && store.InUse(filepath.Join(home, storeFile)) {
		// A serve started while the backup was read and checked (a
		// large store takes a while): it keeps the old store open,
		// and the files must not move under it.
		err = failf("stop it first, then run the restore again", "a process opened the store of %s while the backup was being checked (a demes serve?)", home)
	}
	if err != nil {
		os.RemoveAll(stage)
		undo()
		return err
	}
	replaced, err := installStaged(stage, home)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: restored %s from %s (made %s by demes %s): identity %s, %s\n",
		home, file, m.CreatedAt.Format(time.RFC3339), oneLine(m.Version), m.PublicID, plural(m.Groups, "group"))
	if replaced != "" {
		fmt.Fprintf(stderr, "demes: the files it replaced are in %s\n", replaced)
		when := "you have checked that the restored node works"
		if other := otherIdentity(filepath.Join(replaced, identityFile), filepath.Join(home, identityFile), m.PublicID); other != "" {
			// The warning below says to delete the directory: with
			// another identity in it, that would delete the only copy
			// of that identity the person may have.
			fmt.Fprintf(stderr, "demes: warning: the home held %s, which the restored identity replaced; %s may be the only copy of it: keep it while you may want that identity\n",
				other, shellQuote(filepath.Join(replaced, identityFile)))
			when = "you have checked that the restored node works, and copied that identity file elsewhere if you keep it"
		}
		warnReplacedKeys(stderr, replaced, when)
	}
	serve, note := "demes serve --home "+home, "with the same --listen or --advertise address as before"
	if sealed {
		// serve cannot open a sealed identity without its passphrase.
		serve += " --passphrase-file F"
		note = "F: the file that holds the identity's passphrase, as it is sealed with one; " + note
	}
	fmt.Fprintf(stderr, "demes: start the node with: %s (%s); it catches up with its groups from the other members\n", serve, note)
	fmt.Fprintln(stdout, m.PublicID)
	return nil
}

// checkRestoreTarget refuses a home that a serve runs in, and a home that is
// not empty unless force is set.
func checkRestoreTarget(home string, force bool) error {
	entries, err := os.ReadDir(home)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read home %s: %w", home, err)
	}
	if pid, running := runningServe(home); running {
		return failf("stop it first", "a demes serve (pid %d) is running for home %s", pid, home)
	}
	if store.InUse(filepath.Join(home, storeFile)) {
		return failf("stop it first", "a process has the store of %s open (a demes serve?)", home)
	}
	if len(entries) > 0 && !force {
		return failf("restore into a new or empty --home DIR, or add --force to replace this home's identity, profile and store (they are kept in HOME/replaced-TIME-*/)",
			"home %s is not empty", home)
	}
	return nil
}

// backupIdentity reads the backup's age header and returns what opens it:
// the passphrase in passFile for a passphrase-sealed backup; otherwise the
// identity in idPath (default: the home's), which it also returns. A file
// that is not an age file is not a backup.
func backupIdentity(src io.Reader, file, home, passFile, idPath string) (age.Identity, *identity.Identity, error) {
	types, err := stanzaTypes(src)
	if err != nil {
		return nil, nil, failf("name the file that demes backup -o wrote", "%s is not a demes backup: %v", file, err)
	}
	if len(types) == 1 && types[0] == "scrypt" {
		if passFile == "" {
			return nil, nil, failf("give the backup's passphrase with --passphrase-file F", "%s is sealed with a passphrase", file)
		}
		pass, err := readPassphraseFile(passFile)
		if err != nil {
			return nil, nil, withHint(err, "--passphrase-file must name a file that holds the backup's passphrase")
		}
		defer clear(pass)
		id, err := age.NewScryptIdentity(string(pass))
		if err != nil {
			return nil, nil, err
		}
		return id, nil, nil
	}
	for _, t := range types {
		if t != "X25519" {
			return nil, nil, failf("name the file that demes backup -o wrote", "%s is an age file, but not a demes backup (sealed to %q)", file, t)
		}
	}
	path := idPath
	if path == "" {
		path = filepath.Join(home, identityFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, failf("give that identity's file with --identity FILE (back up with --passphrase-file to restore without it)",
				"%s is sealed to a node's identity, and home %s has none", file, home)
		}
	}
	id, err := loadIdentityAt(path, passFile)
	if err != nil {
		return nil, nil, err
	}
	return id.AgeIdentity(), id, nil
}

// stanzaTypes reads an age file's header and returns its recipient stanza
// types ("scrypt", "X25519", ...).
func stanzaTypes(r io.Reader) ([]string, error) {
	br := bufio.NewReader(io.LimitReader(r, 64<<10))
	line, err := br.ReadString('\n')
	if err != nil || line != "age-encryption.org/v1\n" {
		return nil, errors.New("not an age-encrypted file")
	}
	var types []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, errors.New("its age header is cut short")
		}
		if strings.HasPrefix(line, "---") {
			break
		}
		if rest, ok := strings.CutPrefix(line, "-> "); ok {
			types = append(types, strings.Fields(rest + " ")[0])
		}
	}
	if len(types) == 0 {
		return nil, errors.New("its age header has no recipient")
	}
	return types, nil
}

// ensureHome creates home (0700) and its parents if they do not exist. It
// returns the topmost directory it created ("" when home existed), for a
// failed restore to remove again.
func ensureHome(home string) (created string, err error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("create home: %w", err)
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		created = dir
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", fmt.Errorf("create home: %w", err)
	}
	return created, nil
}

// backupFiles are the files a backup may hold besides the manifest, with
// their size limits (0: none) and whether they must be there.
var backupFiles = map[string]struct {
	max      int64
	required bool
}{
	identityFile: {keys.MaxFileSize, true},
	profileFile:  {maxSmallFile, false},
	storeFile:    {0, true},
}

// unpackBackup decrypts src, of size bytes, and writes its files into stage
// (mode 0600), after the manifest, which must come first. It reads the age
// file to its end, so that a cut or altered file is an error here, not a
// quiet loss.
func unpackBackup(src io.Reader, file string, id age.Identity, stage string, size int64) (backupManifest, error) {
	var m backupManifest
	bad := func(err error) error {
		return failf("the file is damaged or cut short: use another copy of the backup", "%s is not a whole demes backup: %v", file, err)
	}
	ar, err := age.Decrypt(src, id)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch) && len(noMatch.StanzaTypes) == 1 && noMatch.StanzaTypes[0] == "scrypt":
		return m, failf("check the passphrase file given with --passphrase-file", "wrong passphrase for %s", file)
	case errors.As(err, &noMatch):
		return m, failf("give the identity it was made with, with --identity FILE", "%s is sealed to another identity", file)
	case err != nil:
		return m, bad(err)
	}
	tr := tar.NewReader(ar)
	seen := map[string]bool{}
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, bad(err)
		}
		if i == 0 {
			if hdr.Name != manifestName {
				return m, failf("name the file that demes backup -o wrote", "%s is not a demes backup (no manifest)", file)
			}
			if m, err = readManifest(tr, hdr.Size); err != nil {
				return m, withHint(fmt.Errorf("%s: %w", file, err), "restore it with the demes version that made it, or a newer one")
			}
			continue
		}
		spec, ok := backupFiles[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg || seen[hdr.Name] || hdr.Size < 0 || (spec.max > 0 && hdr.Size > spec.max) {
			return m, bad(fmt.Errorf("unexpected entry %q", hdr.Name))
		}
		if hdr.Size > size {
			// A sparse entry, which archive/tar fills with zeros: a
			// backup of a few bytes would fill the disk.
			return m, bad(fmt.Errorf("entry %q of %d bytes in a file of %d bytes", hdr.Name, hdr.Size, size))
		}
		seen[hdr.Name] = true
		if err := writeStaged(filepath.Join(stage, hdr.Name), tr); err != nil {
			if errors.Is(err, errWriteStaged) {
				return m, fmt.Errorf("restore %s: %w", hdr.Name, err)
			}
			return m, bad(err)
		}
	}
	// The tar archive ends before the age file does; only reading the
	// age file to its end checks its last chunk.
	if _, err := io.Copy(io.Discard, ar); err != nil {
		return m, bad(err)
	}
	if m.Format == 0 {
		return m, failf("name the file that demes backup -o wrote", "%s is not a demes backup (no manifest)", file)
	}
	for name, spec := range backupFiles {
		if spec.required && !seen[name] {
			return m, bad(fmt.Errorf("it has no %s", name))
		}
	}
	return m, nil
}

// readManifest decodes the manifest and refuses a format this demes does
// not know.
func readManifest(r io.Reader, size int64) (backupManifest, error) {
	var m backupManifest
	if size > maxSmallFile {
		return m, errors.New("the backup's manifest is too large")
	}
	if err := json.NewDecoder(io.LimitReader(r, size)).Decode(&m); err != nil {
		return m, fmt.Errorf("the backup's manifest: %w", err)
	}
	if m.Format != backupFormat {
		return m, fmt.Errorf("a backup of format %d; this demes reads format %d", m.Format, backupFormat)
	}
	if _, err := identity.ParsePublicID(m.PublicID); err != nil {
		return m, fmt.Errorf("the backup's manifest: %w", err)
	}
	return m, nil
}

// errWriteStaged marks a failure to write a staged file (a full disk), as
// opposed to a failure to read the backup.
var errWriteStaged = errors.New("cannot write")

// writeStaged writes r to path, mode 0600, and fsyncs it.
func writeStaged(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", errWriteStaged, err)
	}
	defer f.Close()
	if _, err := io.Copy(writerOnly{f}, r); err != nil {
		var we writeErr
		if errors.As(err, &we) {
			return fmt.Errorf("%w: %v", errWriteStaged, we.error)
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: %v", errWriteStaged, err)
	}
	return f.Close()
}

// writerOnly marks the errors of the file it writes, so that writeStaged
// tells a full disk from a damaged backup (io.Copy returns either).
type writerOnly struct{ f *os.File }

type writeErr struct{ error }

func (w writerOnly) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, writeErr{err}
	}
	return n, nil
}

// checkStaged checks the staged files: the identity reads (or is sealed)
// and is the manifest's, the profile reads, the store is a whole DeMeS
// store. For a backup opened by the identity opener, a sealed identity in
// it must open with passFile, as opener did, and be opener. It returns the
// number of groups in the store, and whether the identity is sealed with a
// passphrase.
func checkStaged(stage string, m backupManifest, opener *identity.Identity, passFile string) (groups int, sealed bool, err error) {
	bad := func(err error) error {
		return withHint(err, "the backup is not usable; use another one")
	}
	id, err := keys.Load(filepath.Join(stage, identityFile), nil)
	switch {
	case errors.Is(err, keys.ErrPassphraseNeeded):
		// Sealed with its own passphrase, which serve will ask for.
		sealed = true
		if opener == nil {
			break
		}
		// Else anything that looks sealed would pass for the identity
		// the backup is sealed to.
		id, err := loadIdentityAt(filepath.Join(stage, identityFile), passFile)
		if err != nil {
			return 0, false, bad(fmt.Errorf("the backup's identity does not open with the passphrase of %s: %w", opener.Public(), err))
		}
		if id.Public() != opener.Public() {
			return 0, false, bad(fmt.Errorf("the backup's identity is %s, not %s, to which it is sealed", id.Public(), opener.Public()))
		}
	case err != nil:
		return 0, false, bad(fmt.Errorf("the backup's identity: %w", err))
	case id.Public().String() != m.PublicID:
		return 0, false, bad(fmt.Errorf("the backup's identity is %s, its manifest says %s", id.Public(), m.PublicID))
	}
	if _, err := os.Stat(filepath.Join(stage, profileFile)); err == nil {
		if _, err := keys.LoadProfile(filepath.Join(stage, profileFile)); err != nil {
			return 0, false, bad(fmt.Errorf("the backup's profile: %w", err))
		}
	}
	// The manifest counts the groups a moment before the copy; the
	// store's own count is the one to show.
	groups, err = store.Check(filepath.Join(stage, storeFile))
	if err != nil {
		return 0, false, bad(fmt.Errorf("the backup's store: %w", err))
	}
	return groups, sealed, nil
}

// installStaged moves the staged files into home. Files of the home that
// they replace go to a directory replaced-TIME in the home first, which
// installStaged returns ("" when nothing was replaced). A stale serve.json
// is removed; the token stays.
//
// The home's key store (keys.db, with its lock) goes with the replaced
// files: it holds keys of the home's later history, or of another identity,
// and a backup holds none (the restored node asks for new keys).
func installStaged(stage, home string) (replaced string, err error) {
	names := []string{storeFile, profileFile, identityFile}
	if replaced, err = moveAside(home, append(names, keyStoreFile, keyStoreFile+".lock")...); err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	// A profile in the home and none in the backup: the restored home has
	// the backup's (no) profile, and the old one is kept above.
	for _, name := range names {
		from := filepath.Join(stage, name)
		if _, err := os.Stat(from); err != nil {
			continue
		}
		if err := os.Rename(from, filepath.Join(home, name)); err != nil {
			return replaced, fmt.Errorf("restore: put %s in place: %w", name, err)
		}
	}
	os.Remove(filepath.Join(home, serveInfoFile))
	// The home holds the identity: owner only, whatever it was before.
	if err := os.Chmod(home, 0o700); err != nil {
		return replaced, fmt.Errorf("restore: %w", err)
	}
	if err := fsutil.SyncDir(home); err != nil {
		return replaced, fmt.Errorf("restore: %w", err)
	}
	return replaced, nil
}

// otherIdentity names the identity in the file at old, which restore
// moved aside, when it is not the restored one (restored, public id
// restoredID), in words: with its public id, or, for a sealed file unlike
// the restored one, saying that it is sealed. "" when it is the same
// identity, or there is none.
func otherIdentity(old, restored, restoredID string) string {
	id, err := keys.Load(old, nil)
	switch {
	case err == nil:
		if pub := id.Public().String(); pub != restoredID {
			return "another identity, " + pub
		}
		return ""
	case errors.Is(err, keys.ErrPassphraseNeeded):
		a, errA := os.ReadFile(old)
		b, errB := os.ReadFile(restored)
		if errA == nil && errB == nil && !bytes.Equal(a, b) {
			return "a sealed identity that may be another one (its public id cannot be read without its passphrase)"
		}
	}
	return ""
}

// moveAside moves those of the files names in home that exist into a new
// directory replaced-TIME-* in home, and returns it ("" when none exists).
func moveAside(home string, names ...string) (dir string, err error) {
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(home, name)); err != nil {
			continue
		}
		if dir == "" {
			// MkdirTemp: two in one second get two directories.
			if dir, err = os.MkdirTemp(home, "replaced-"+time.Now().UTC().Format("20060102T150405Z")+"-*"); err != nil {
				return "", fmt.Errorf("keep the replaced files: %w", err)
			}
		}
		if err := os.Rename(filepath.Join(home, name), filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("keep the replaced %s: %w", name, err)
		}
	}
	return dir, nil
}

// warnReplacedKeys warns, when dir (a replaced-TIME-* directory of the
// home) holds a key store that restore or keygen moved aside, that the
// message keys in it stay there for good: the key retention policy
// (serve --key-retention) deletes keys from the home's key store only, so
// these undo forward secrecy until the directory is deleted, once when
// says it may be.
func warnReplacedKeys(stderr io.Writer, dir, when string) {
	if _, err := os.Lstat(filepath.Join(dir, keyStoreFile)); err != nil {
		return
	}
	fmt.Fprintf(stderr, "demes: warning: %s holds the old key store: the key retention policy (serve --key-retention) no longer deletes the message keys in it, "+
		"so old messages stay readable from there. Once %s, delete that directory: rm -r %s\n", dir, when, shellQuote(dir))
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that need no quoting, so that a command to paste stays whole.
func shellQuote(s string) string {
	plain := func(r rune) bool {
		return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-./:+=@%,", r))
	}
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !plain(r) }) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
