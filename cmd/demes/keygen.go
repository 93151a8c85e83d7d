package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/keys"
)

// runKeygen creates the home's identity. The public id is the last line of
// stdout, so scripts can capture it.
func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("keygen [--force] [--passphrase-file F] [--name NAME]", stdout)
	force := f.Bool("force", false, "replace an existing identity (it is lost, and with it your membership in its groups)")
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
		if opts.Passphrase, err = keys.ReadPassphraseFile(*passFile); err != nil {
			return withHint(err, "--passphrase-file must name a file that holds the passphrase")
		}
		defer clear(opts.Passphrase)
		if opts.WorkFactor, err = workFactorFromEnv(); err != nil {
			return err
		}
	}
	if err := mkdirHome(home); err != nil {
		return err
	}

	id, err := identity.Generate()
	if err != nil {
		return err
	}
	path := filepath.Join(home, identityFile)
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
	fmt.Fprintln(stdout, id.Public())
	return nil
}
