// Package keys keeps a DeMeS identity on disk: the identity file in a node's
// home, readable only by its owner and optionally sealed with a passphrase.
//
// # The identity file
//
// [Save] writes an [identity.Identity] and [Load] reads it back. Unsealed, the
// file is text that age users will recognise:
//
//	# DeMeS identity, public id: demes1...
//	DEMES-SECRET-KEY-1...
//
// Lines starting with "#" are comments; the one key line is what counts.
// Sealed (with [SaveOptions.Passphrase]), the file is an armored age file
// ("-----BEGIN AGE ENCRYPTED FILE-----") encrypted to an age scrypt recipient,
// whose plaintext is the unsealed text above. Any age tool can open it with
// the passphrase.
//
// # Safety
//
// Save writes atomically (a temporary file in the same directory, fsync,
// rename, fsync of the directory), so a crash leaves the old file or the new
// one, never half of either. The file has mode 0600, and Load refuses a file
// that group or others can read: a key that others could have copied is not
// one to keep using silently.
//
// Secret keys and passphrases never appear in errors. The errors wrap the
// sentinels below, so callers can add their own hint with [errors.Is].
package keys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/fsutil"
)

// Errors returned by [Save] and [Load]; the errors they return wrap one of
// these where it applies, with the path and the fix in the text.
var (
	// ErrNoIdentity: there is no identity file at the path.
	ErrNoIdentity = errors.New("no identity")
	// ErrExists: Save was asked to write over an identity without Force.
	ErrExists = errors.New("an identity already exists")
	// ErrPermissions: the identity file is readable by group or others.
	ErrPermissions = errors.New("identity file is readable by other users")
	// ErrPassphraseNeeded: the file is sealed and no passphrase was supplied.
	ErrPassphraseNeeded = errors.New("the identity is sealed with a passphrase, and none was given")
	// ErrWrongPassphrase: the passphrase does not open the sealed file.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrMalformed: the file is not an identity file DeMeS can read.
	ErrMalformed = errors.New("malformed identity file")
)

// MaxFileSize bounds what Load reads: an identity file is well under 1 KiB,
// sealed or not, so anything much larger is not one.
const MaxFileSize = 64 << 10

// defaultMaxWorkFactor is the largest scrypt work factor (log2 N) Load
// accepts, age's own default: about 15 s of work on a laptop.
const defaultMaxWorkFactor = 22

// header starts every unsealed file; the public id follows it, so a person can
// tell whose key a file holds without opening it.
const header = "# DeMeS identity, public id: "

// SaveOptions controls how [Save] writes the identity file.
type SaveOptions struct {
	// Passphrase, when not empty, seals the file with age's scrypt recipient.
	Passphrase []byte
	// Force allows replacing an existing file. Without it Save fails with an
	// error wrapping [ErrExists], since overwriting an identity loses it.
	Force bool
	// WorkFactor is the scrypt work factor as log2 N (1 to 30); 0 uses age's
	// default (18, about a second). Tests use small values to run fast.
	WorkFactor int
}

// Save writes id to path, sealed with opts.Passphrase when it is set. The file
// has mode 0600 and appears atomically. The directory must exist.
func Save(path string, id *identity.Identity, opts SaveOptions) error {
	if id == nil {
		return errors.New("save identity: no identity given")
	}
	if opts.WorkFactor < 0 || opts.WorkFactor > 30 {
		return fmt.Errorf("save identity: scrypt work factor %d is out of range (1 to 30, or 0 for the default)", opts.WorkFactor)
	}
	data, err := encode(id, opts)
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	// Secrets are wiped once used, so that they do not linger in memory;
	// best effort, as Go may have copied them (strings, the GC).
	defer clear(data)
	if err := writeAtomic(path, data, 0o600, opts.Force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save identity: %w at %s", ErrExists, path)
		}
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}

// encode returns the file contents for id.
func encode(id *identity.Identity, opts SaveOptions) ([]byte, error) {
	plain := []byte(header + id.Public().String() + "\n" + id.SecretKey() + "\n")
	if len(opts.Passphrase) == 0 {
		return plain, nil
	}
	defer clear(plain)
	r, err := age.NewScryptRecipient(string(opts.Passphrase))
	if err != nil {
		return nil, fmt.Errorf("seal with passphrase: %w", err)
	}
	if opts.WorkFactor != 0 {
		r.SetWorkFactor(opts.WorkFactor)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("seal with passphrase: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("seal with passphrase: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal with passphrase: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("seal with passphrase: %w", err)
	}
	return buf.Bytes(), nil
}

// Load reads the identity file at path. When the file is sealed it calls
// passphrase to get the passphrase (and only then); a nil passphrase makes a
// sealed file fail with [ErrPassphraseNeeded].
//
// It refuses a file that group or others can read ([ErrPermissions]); the
// error says how to fix that.
func Load(path string, passphrase func() ([]byte, error)) (*identity.Identity, error) {
	return load(path, passphrase, defaultMaxWorkFactor)
}

// load is Load with a cap on the scrypt work a sealed file may demand.
func load(path string, passphrase func() ([]byte, error), maxWorkFactor int) (*identity.Identity, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load identity: %w at %s: create one with \"demes keygen\"", ErrNoIdentity, path)
	}
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load identity: %w: %s is not a regular file", ErrMalformed, path)
	}
	// Windows has no Unix permission bits to check; there the home directory's
	// ACL is what protects the file.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("load identity: %w: %s has mode %04o; fix it with: chmod 600 %s",
			ErrPermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	defer clear(data)
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("load identity: %w: %s is larger than %d bytes", ErrMalformed, path, MaxFileSize)
	}
	id, err := parse(data, passphrase, maxWorkFactor)
	if err != nil {
		return nil, fmt.Errorf("load identity from %s: %w", path, err)
	}
	return id, nil
}

// IsSealed reports whether data, the contents of an identity file, is sealed
// with a passphrase (an age file, armored or binary).
func IsSealed(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return bytes.HasPrefix(t, []byte(armor.Header)) || bytes.HasPrefix(t, []byte("age-encryption.org/"))
}

// parse decodes the contents of an identity file. maxWorkFactor caps the
// scrypt work a sealed file can demand (the fuzz test keeps it small).
func parse(data []byte, passphrase func() ([]byte, error), maxWorkFactor int) (*identity.Identity, error) {
	if !IsSealed(data) {
		return parseText(data)
	}
	if passphrase == nil {
		return nil, ErrPassphraseNeeded
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	defer clear(pass)
	if len(pass) == 0 {
		return nil, fmt.Errorf("%w: the passphrase is empty", ErrWrongPassphrase)
	}
	sid, err := age.NewScryptIdentity(string(pass))
	if err != nil {
		return nil, fmt.Errorf("open sealed identity: %w", err)
	}
	sid.SetMaxWorkFactor(maxWorkFactor)
	var src io.Reader = bytes.NewReader(data)
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, sid)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch) && len(noMatch.StanzaTypes) == 1 && noMatch.StanzaTypes[0] == "scrypt":
		return nil, fmt.Errorf("%w: the passphrase does not open this identity file", ErrWrongPassphrase)
	case errors.As(err, &noMatch):
		return nil, fmt.Errorf("%w: the file is age-encrypted, but not with a passphrase", ErrMalformed)
	case err != nil:
		return nil, fmt.Errorf("%w: sealed file: %v", ErrMalformed, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed file: %v", ErrMalformed, err)
	}
	if len(plain) > MaxFileSize {
		return nil, fmt.Errorf("%w: sealed contents are larger than %d bytes", ErrMalformed, MaxFileSize)
	}
	if IsSealed(plain) {
		// One layer of sealing is the format; more is not, and recursing
		// would let a file demand unbounded scrypt work.
		return nil, fmt.Errorf("%w: sealed twice", ErrMalformed)
	}
	return parseText(plain)
}

// parseText decodes the unsealed form: comment lines, blank lines and exactly
// one key line.
func parseText(data []byte) (*identity.Identity, error) {
	var key string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1024), MaxFileSize)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if key != "" {
			return nil, fmt.Errorf("%w: more than one key line (line %d)", ErrMalformed, n)
		}
		key = line
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if key == "" {
		return nil, fmt.Errorf("%w: no %s1... key line in it", ErrMalformed, identity.SecretHRP)
	}
	if !strings.HasPrefix(strings.ToUpper(key), identity.SecretHRP+"1") {
		return nil, fmt.Errorf("%w: the key line does not start with %s1", ErrMalformed, identity.SecretHRP)
	}
	id, err := identity.ParseSecretKey(key)
	if err != nil {
		// The parser's detail can quote characters of the key, so it stays
		// out of the message.
		return nil, fmt.Errorf("%w: the %s1... line is damaged (cut, mistyped or edited)", ErrMalformed, identity.SecretHRP)
	}
	return id, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory. Without overwrite it fails with an error wrapping fs.ErrExist if
// path exists, and does so atomically where hard links work, so two writers
// racing cannot both think they created the file.
func writeAtomic(path string, data []byte, perm fs.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fs.ErrExist
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// CreateTemp makes the file 0600 from the start, so the secret is never
	// readable by others, not even for a moment.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("set file mode: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if overwrite {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("replace %s: %w", path, err)
		}
	} else {
		// link fails if path exists, unlike rename, which would replace it.
		lerr := os.Link(tmp, path)
		switch {
		case lerr == nil:
			os.Remove(tmp)
		case errors.Is(lerr, fs.ErrExist):
			return fs.ErrExist
		default:
			// No hard links here (some network or FUSE file systems):
			// fall back to the check above and a rename.
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("create %s: %w", path, err)
			}
		}
	}
	return fsutil.SyncDir(dir)
}
