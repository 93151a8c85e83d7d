package main

import (
	"context"
	"fmt"
	"io"
)

// idJSON is `demes id --json`.
type idJSON struct {
	PublicID     string `json:"public_id"`
	Fingerprint  string `json:"fingerprint"`
	AgeRecipient string `json:"age_recipient"`
	Name         string `json:"name"`
}

// runID prints the home's public id, the text others invite.
func runID(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("id [--json] [--passphrase-file F]", stdout)
	asJSON := f.Bool("json", false, "print public_id, fingerprint, age_recipient and name as JSON")
	passFile := f.String("passphrase-file", "", "the passphrase `FILE` of a sealed identity (default $"+envPassphraseFile+")")
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
	id, err := loadIdentity(home, *passFile)
	if err != nil {
		return err
	}
	pub := id.Public()
	if !*asJSON {
		fmt.Fprintln(stdout, pub)
		return nil
	}
	profile, err := loadProfile(home)
	if err != nil {
		return err
	}
	return writeJSON(stdout, idJSON{
		PublicID:     pub.String(),
		Fingerprint:  pub.Fingerprint(),
		AgeRecipient: pub.AgeRecipient(),
		Name:         profile.Name,
	})
}
