package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
)

// Files in a node's home. serve.json and token are written by `demes serve`
// and read by the commands that talk to it (see client.go).
const (
	identityFile  = "identity"     // the identity, mode 0600 (package keys)
	profileFile   = "profile.json" // the display name (keys.Profile)
	serveInfoFile = "serve.json"   // serveInfo of the running serve
	tokenFile     = "token"        // the local API's bearer token
)

// Environment variables the CLI reads besides DEMES_HOME.
const (
	// envPassphraseFile names the passphrase file of a sealed identity when
	// --passphrase-file is not given, so scripts and services need not
	// repeat it on every command.
	envPassphraseFile = "DEMES_PASSPHRASE_FILE"
	// envWorkFactor sets the scrypt work factor (log2 N, 1 to 30) keygen
	// seals with. It is a testing knob: tests set it low (10) to run fast,
	// people leave it unset for age's default (18, about a second).
	envWorkFactor = "DEMES_SCRYPT_WORK_FACTOR"
)

// loadIdentity reads the identity of home. A sealed identity is opened with
// the passphrase in passFile, else in $DEMES_PASSPHRASE_FILE. Errors carry the
// fix as a hint.
func loadIdentity(home, passFile string) (*identity.Identity, error) {
	path := filepath.Join(home, identityFile)
	id, err := loadIdentityAt(path, passFile)
	if errors.Is(err, keys.ErrNoIdentity) {
		return nil, failf("create one with: demes keygen --home "+home, "no identity in %s (no file %s)", home, path)
	}
	return id, err
}

// loadIdentityAt reads the identity file at path, as loadIdentity does.
func loadIdentityAt(path, passFile string) (*identity.Identity, error) {
	flag := passFile != ""
	if !flag {
		passFile = os.Getenv(envPassphraseFile)
	}
	var pass func() ([]byte, error)
	var passErr error
	asked := false
	if passFile != "" {
		pass = func() ([]byte, error) {
			asked = true
			b, err := readPassphraseFile(passFile)
			passErr = err
			return b, err
		}
	}
	id, err := keys.Load(path, pass)
	if err == nil && flag && !asked {
		// An identity that is not sealed needs no passphrase; but a
		// --passphrase-file that names no readable file is a mistake to
		// say (a wrong path, or a home that is not the one meant), not
		// to pass over. The variable may be set for every home of a
		// machine, sealed or not: it is not checked.
		if _, err := readPassphraseFile(passFile); err != nil {
			return nil, withHint(err, "the identity in "+path+" is not sealed and needs no passphrase: leave out --passphrase-file, or name the file that is there")
		}
	}
	switch {
	case err == nil:
		return id, nil
	case passErr != nil:
		// The file's own error alone: wrapped in the identity's, it read
		// "load identity from …: read passphrase: read passphrase file: …".
		switch {
		case errors.Is(passErr, fs.ErrNotExist):
			return nil, withHint(passErr, "--passphrase-file (or "+envPassphraseFile+") must name the file that holds this identity's passphrase")
		case errors.Is(passErr, fs.ErrPermission):
			return nil, withHint(passErr, "make "+passFile+" readable by this user")
		}
		return nil, passErr // empty, or too large: the error says so
	case errors.Is(err, keys.ErrNoIdentity):
		return nil, withHint(err, "name an identity file that exists")
	case errors.Is(err, keys.ErrPermissions):
		return nil, withHint(err, "chmod 600 "+path)
	case errors.Is(err, keys.ErrPassphraseNeeded):
		return nil, withHint(err, "give the passphrase file with --passphrase-file FILE or "+envPassphraseFile+"=FILE")
	case errors.Is(err, keys.ErrWrongPassphrase):
		return nil, withHint(err, "check the passphrase in "+passFile)
	case errors.Is(err, keys.ErrMalformed):
		return nil, withHint(err, "restore the file from a backup; 'demes keygen --force' makes a new identity, which is a new person to your groups")
	}
	return nil, err
}

// readPassphraseFile is keys.ReadPassphraseFile, with a file that cannot be
// opened or read said in words (see fileError).
func readPassphraseFile(path string) ([]byte, error) {
	b, err := keys.ReadPassphraseFile(path)
	var pe *os.PathError
	if errors.As(err, &pe) {
		return nil, &fileError{"passphrase file " + path, pe}
	}
	return b, err
}

// loadProfile reads home's profile; a missing one is empty.
func loadProfile(home string) (keys.Profile, error) {
	return keys.LoadProfile(filepath.Join(home, profileFile))
}

// workFactorFromEnv returns the scrypt work factor from
// $DEMES_SCRYPT_WORK_FACTOR, or 0 (age's default) when it is unset.
func workFactorFromEnv() (int, error) {
	s := os.Getenv(envWorkFactor)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 30 {
		return 0, failf("unset it, or set it to a number from 1 to 30", "%s=%q is not a work factor", envWorkFactor, s)
	}
	return n, nil
}

// mkdirHome creates home, readable only by its owner since it holds the
// identity and the API token.
func mkdirHome(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create home: %w", err)
	}
	return nil
}
