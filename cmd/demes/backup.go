package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/version"
	"github.com/demes/demes/keys"
)

// A backup is an age file (filippo.io/age) whose plaintext is a tar archive
// of the home, in this order:
//
//	demes-backup.json  the manifest (backupManifest)
//	identity           the identity file as it is in the home (sealed or not)
//	profile.json       the display name, when the home has one
//	store.db           a consistent copy of the store, made by the serving node
//
// It is sealed either with a passphrase (age's scrypt recipient), which is
// what disaster recovery needs, or to the node's own identity (its age
// recipient), which only that identity can open. The token and serve.json
// are not in it: a restored node makes a new token when it starts.
const (
	manifestName  = "demes-backup.json"
	storeFile     = "store.db"
	keyStoreFile  = "keys.db" // node/keys.go: never in a backup
	backupFormat  = 1
	backupTimeout = time.Hour // a large store over loopback takes seconds; a slow disk, longer
)

// backupManifest says what a backup is, so that restore can refuse a file
// that is not one before unpacking anything else.
type backupManifest struct {
	Format    int       `json:"format"`     // backupFormat
	PublicID  string    `json:"public_id"`  // the identity in the backup
	CreatedAt time.Time `json:"created_at"` // when the store was copied
	Version   string    `json:"version"`    // the demes that made it
	Groups    int       `json:"groups"`     // groups in the store, for the person restoring
}

// runBackup writes a backup of the home of a running `demes serve`.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("backup -o FILE [--passphrase-file F]", stdout, "", false)
	out := f.String("o", "", "write the backup to `FILE` (\"-\" for stdout)")
	passFile := f.String("passphrase-file", "", "seal the backup with the passphrase in `FILE` (recommended: "+
		"only a passphrase-sealed backup can be restored when the identity is lost with the machine); "+
		"without it, the backup is sealed to this node's identity")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *out == "" {
		return f.usagef("missing -o FILE")
	}
	// Never over an existing file (helper-58's QA pass: an earlier backup,
	// or any file given by mistake, was replaced without a word), and
	// said before the node is asked.
	if *out != "-" {
		if err := checkNewFile(*out); err != nil {
			return err
		}
	}
	var pass []byte
	if *passFile != "" {
		if pass, err = readPassphraseFile(*passFile); err != nil {
			return withHint(err, "--passphrase-file must name a file that holds the backup's passphrase")
		}
		defer clear(pass)
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	st, err := c.status(ctx)
	if err != nil {
		return err
	}
	pub, err := identity.ParsePublicID(st.PublicID)
	if err != nil {
		return fmt.Errorf("the node's public id %q: %w", st.PublicID, err)
	}
	idFile, profile, err := readHomeFiles(c.home, pub)
	if err != nil {
		return err
	}
	defer clear(idFile)

	recipient, sealed, err := backupRecipient(pass, pub)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, api.RouteBackupStore, nil, backupTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.ContentLength < 0 {
		return errors.New("the node sent a store copy without its length; is this demes serve older than this demes?")
	}
	m := backupManifest{Format: backupFormat, PublicID: st.PublicID, CreatedAt: time.Now().UTC().Truncate(time.Second),
		Version: version.Get().String(), Groups: len(st.Groups)}
	write := func(w io.Writer) error {
		return writeBackup(w, recipient, m, idFile, profile, resp.Body, resp.ContentLength)
	}
	if *out == "-" {
		return write(stdout)
	}
	n, err := writeNewFileWith(*out, 0o600, write)
	if errors.Is(err, fs.ErrExist) {
		return withHint(err, existsHint)
	}
	if err != nil {
		return fmt.Errorf("write backup %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "demes: wrote the backup of %s (%s, %d bytes) to %s, %s\n", c.home, plural(m.Groups, "group"), n, *out, sealed)
	if pass != nil {
		fmt.Fprintf(stderr, "demes: restore it with: demes restore %s --home DIR --passphrase-file F\n", *out)
		return nil
	}
	fmt.Fprintf(stderr, "demes: restore it with: demes restore %s --home DIR --identity FILE\n", *out)
	fmt.Fprintf(stderr, "demes: only this identity opens it: keep a copy of the identity file apart, or back up with --passphrase-file for disaster recovery\n")
	return nil
}

// readHomeFiles reads the identity file and the profile (nil when there is
// none) of home. An unsealed identity file must hold the serving node's
// identity: a backup of another key next to this store would restore a
// node that is no member of its own groups.
func readHomeFiles(home string, pub identity.PublicID) (idFile, profile []byte, err error) {
	idPath := filepath.Join(home, identityFile)
	idFile, err = readSmallFile(idPath, keys.MaxFileSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read the identity: %w", err)
	}
	if !keys.IsSealed(idFile) {
		id, err := keys.Load(idPath, nil)
		if err != nil {
			clear(idFile)
			return nil, nil, err
		}
		if id.Public() != pub {
			clear(idFile)
			return nil, nil, failf("restart the node, or back up the home it was started with",
				"the identity in %s is %s, but the running node is %s", idPath, id.Public(), pub)
		}
	}
	profile, err = readSmallFile(filepath.Join(home, profileFile), maxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return idFile, nil, nil
	}
	if err != nil {
		clear(idFile)
		return nil, nil, fmt.Errorf("read the profile: %w", err)
	}
	return idFile, profile, nil
}

// maxSmallFile bounds the manifest and the profile, in a backup and in a
// home.
const maxSmallFile = 64 << 10

// readSmallFile reads a file of at most max bytes.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// backupRecipient returns whom the backup is sealed to, and those words for
// the person: the passphrase when there is one, else the identity pub.
func backupRecipient(pass []byte, pub identity.PublicID) (age.Recipient, string, error) {
	if pass == nil {
		r, err := pub.Recipient()
		if err != nil {
			return nil, "", err
		}
		return r, "sealed to identity " + pub.String(), nil
	}
	r, err := age.NewScryptRecipient(string(pass))
	if err != nil {
		return nil, "", fmt.Errorf("seal with the passphrase: %w", err)
	}
	wf, err := workFactorFromEnv()
	if err != nil {
		return nil, "", err
	}
	if wf > 0 {
		r.SetWorkFactor(wf)
	}
	return r, "sealed with the passphrase", nil
}

// writeBackup writes the age file: the manifest, the identity file, the
// profile and storeSize bytes of store, which must all be there.
func writeBackup(w io.Writer, to age.Recipient, m backupManifest, idFile, profile []byte, store io.Reader, storeSize int64) error {
	aw, err := age.Encrypt(w, to)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(aw)
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mtime := m.CreatedAt
	put := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(r, size))
		if err == nil && n < size {
			err = fmt.Errorf("%s: the node sent %d of %d bytes", name, n, size)
		}
		return err
	}
	if err := put(manifestName, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return err
	}
	if err := put(identityFile, int64(len(idFile)), bytes.NewReader(idFile)); err != nil {
		return err
	}
	if profile != nil {
		if err := put(profileFile, int64(len(profile)), bytes.NewReader(profile)); err != nil {
			return err
		}
	}
	if err := put(storeFile, storeSize, store); err != nil {
		return fmt.Errorf("copy the store: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return aw.Close()
}
