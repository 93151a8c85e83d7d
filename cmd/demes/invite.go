package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// runInvite authorizes a public id to join a group and prints the invite
// code, to pass to that person.
func runInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("invite PUBLIC_ID [--group G] [--json]", stdout, "print the code as JSON", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the PUBLIC_ID to invite (the demes1... line of 'demes id' on their machine)"); err != nil {
		return err
	}
	// Checked here too, so a typo is caught before anything is asked of the
	// node, with the parser's precise reason (prefix, checksum, length).
	pub, err := identity.ParsePublicID(pos[0])
	if err != nil {
		return withHint(err, "copy the whole demes1... line that 'demes id' prints on their machine")
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	var out api.InviteResponse
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteInvites, g.GroupID), api.InviteRequest{PublicID: pub.String()}, &out, apiTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stderr, "demes: invite for %s to %q; they run: demes join CODE\n", pub.Fingerprint(), clean(g.Name, " "))
	fmt.Fprintln(stdout, out.Code)
	return nil
}
