package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
	"github.com/demes/demes/node/store"
)

// runKeygen creates the home's identity. The public id is the last line of
// stdout, so scripts can capture it.
func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("keygen [--force] [--passphrase-file F] [--name NAME]", stdout)
	force := f.Bool("force", false, "replace an existing identity; the old one, its key store and its groups' store move to HOME/replaced-TIME-*/, and your membership in its groups goes with them")
	passFile := f.String("passphrase-file", "", "seal the private keys with the passphrase in `FILE`")
	name := f.String("name", "", "your display `NAME`, shown to the members of your groups")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	home, err := f.Home()
	if err != nil {
		return err
	}
	// Check everything that can fail before writing the identity, so a
	// mistake does not leave a half-done home.
	if *name != "" {
		if err := keys.CheckName(*name); err != nil {
			return f.usagef("--name: %v", err)
		}
	}
	opts := keys.SaveOptions{Force: *force}
	if *passFile != "" {
		if opts.Passphrase, err = readPassphraseFile(*passFile); err != nil {
			return withHint(err, "--passphrase-file must name a file that holds the passphrase")
		}
		defer clear(opts.Passphrase)
		if opts.WorkFactor, err = workFactorFromEnv(); err != nil {
			return err
		}
	}
	// A relay takes the home's identity for its key when there is one
	// (relayIdentity): an identity made while it runs would change the
	// relay's peer id, and so the address its users were given, at its
	// next start.
	if relayRunning(home) {
		return failf("make the node's identity in a home of its own: demes keygen --home DIR",
			"a demes relay is running for home %s: an identity made there would become the relay's key at its next start, and change the address its users were given", home)
	}
	if err := mkdirHome(home); err != nil {
		return err
	}

	id, err := identity.Generate()
	if err != nil {
		return err
	}
	path := filepath.Join(home, identityFile)
	replaced := ""
	if _, err := os.Stat(path); err == nil && *force {
		// The key store is sealed to the old identity and the store holds
		// its groups: a node with the new one could open neither. They go
		// aside with it, as restore --force does.
		if pid, running := runningServe(home); running {
			return failf("stop it first: a node cannot change identity while it runs",
				"a demes serve (pid %d) is running for home %s", pid, home)
		}
		if store.InUse(filepath.Join(home, storeFile)) {
			return failf("stop it first: a node cannot change identity while it runs",
				"a process has the store of %s open (a demes serve?)", home)
		}
		if replaced, err = moveAside(home, identityFile, keyStoreFile, keyStoreFile+".lock", storeFile); err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
	}
	if err := keys.Save(path, id, opts); err != nil {
		if errors.Is(err, keys.ErrExists) {
			return failf("to replace it, losing the old identity and its groups: demes keygen --force --home "+home,
				"an identity already exists in %s", home)
		}
		return err
	}
	if *name != "" {
		if err := keys.SaveProfile(filepath.Join(home, profileFile), keys.Profile{Name: *name}); err != nil {
			return err
		}
	}
	sealed := ""
	if len(opts.Passphrase) > 0 {
		sealed = ", sealed with the passphrase"
	}
	fmt.Fprintf(stderr, "demes: created identity %s%s\ndemes: fingerprint %s\n", path, sealed, id.Public().Fingerprint())
	if replaced != "" {
		fmt.Fprintf(stderr, "demes: the old identity, its key store and its groups' store are kept in %s\n", replaced)
		warnReplacedKeys(stderr, replaced, "you no longer need the old identity")
	}
	fmt.Fprintln(stdout, id.Public())
	return nil
}
