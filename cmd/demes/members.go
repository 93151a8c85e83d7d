package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// The membership commands: leave, remove and admin. Each returns once the
// change is committed to the group's log. The node checks the group's rules
// (only admins remove members or change roles); a refusal comes back from
// the API as the rule in plain words and what to do instead, which report
// prints as the error and its hint (exit 1).

// runLeave is `demes leave [--group G]`: this node leaves the group. It
// keeps the history it has, and receives nothing after.
func runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("leave [--group G]", stdout, "", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteLeave, g.GroupID), struct{}{}, nil, changeTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: left %q; this node keeps its history and receives nothing new\n", clean(g.Name, " "))
	return nil
}

// runRemove is `demes remove PUBLIC_ID [--group G]`: an admin removes a
// member.
func runRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("remove PUBLIC_ID [--group G]", stdout, "", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the PUBLIC_ID of the member to remove ('demes status --json' lists the members)"); err != nil {
		return err
	}
	pub, err := memberID(pos[0])
	if err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteRemove, g.GroupID), api.MemberRequest{PublicID: pub.String()}, nil, changeTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: removed %s from %q\n", pub.Fingerprint(), clean(g.Name, " "))
	return nil
}

// runAdmin is `demes admin add|remove PUBLIC_ID [--group G]`: an admin
// grants or withdraws a member's admin role.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("admin add|remove PUBLIC_ID [--group G]", stdout, "", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return f.usagef("missing the subcommand: add or remove")
	}
	var grant bool
	switch pos[0] {
	case "add":
		grant = true
	case "remove":
	default:
		return f.usagef("unknown subcommand %q: the ones there are, are add and remove", pos[0])
	}
	if err := f.wantArgs(pos[1:], 1, "the PUBLIC_ID of the member ('demes status --json' lists the members)"); err != nil {
		return err
	}
	pub, err := memberID(pos[1])
	if err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	req := api.AdminRequest{PublicID: pub.String(), Admin: grant}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteAdmins, g.GroupID), req, nil, changeTimeout); err != nil {
		return err
	}
	if grant {
		fmt.Fprintf(stderr, "demes: %s is an admin of %q\n", pub.Fingerprint(), clean(g.Name, " "))
	} else {
		fmt.Fprintf(stderr, "demes: %s is no longer an admin of %q\n", pub.Fingerprint(), clean(g.Name, " "))
	}
	return nil
}

// memberID parses a member's public id before the node is asked, with the
// parser's precise reason. A malformed id is bad usage (exit 2), as a
// malformed message id is; a well-formed id of no member is the node's
// refusal (exit 1).
func memberID(s string) (identity.PublicID, error) {
	pub, err := identity.ParsePublicID(s)
	if err != nil {
		return identity.PublicID{}, usageError(err, "give the member's whole demes1... public id ('demes status --json' lists the members)")
	}
	return pub, nil
}
