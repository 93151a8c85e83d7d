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
	// Leaving again fails as the other changes do, naming the group and
	// how this node went (the node's refusal named neither).
	c, g, err := f.connectMember(ctx)
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
	pub, err := memberIDArg(pos[0])
	if err != nil {
		return err
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	// The node takes the removal of itself as leaving: a pasted id of
	// one's own would leave the group for good, reported as a removal.
	st, err := c.status(ctx)
	if err != nil {
		return err
	}
	if st.PublicID == pub.String() {
		return failf("to leave the group, run: demes leave --group "+g.GroupID,
			"%s is this node's own public id: remove takes another member out of %q", pub.Fingerprint(), clean(g.Name, " "))
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
	pub, err := memberIDArg(pos[1])
	if err != nil {
		return err
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	// Nothing to change: say so (exit 0, so that scripts may run it
	// again), rather than report a change. The node would answer with
	// success and commit nothing; a node that may not change roles is
	// asked all the same, for its refusal.
	if same, err := adminAlready(ctx, c, g.GroupID, pub, grant); err != nil {
		return err
	} else if same {
		if grant {
			fmt.Fprintf(stderr, "demes: %s is already an admin of %q; nothing changed\n", pub.Fingerprint(), clean(g.Name, " "))
		} else {
			fmt.Fprintf(stderr, "demes: %s was not an admin of %q; nothing changed\n", pub.Fingerprint(), clean(g.Name, " "))
		}
		return nil
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

// adminAlready reports whether the member pub of group gid has the admin
// role already (admin true) or has it not (admin false), as this node's
// status shows it, when this node is an admin of the group. It reports
// false when this node is no admin or pub no member: the node's answer to
// the change says why not.
func adminAlready(ctx context.Context, c *client, gid string, pub identity.PublicID, admin bool) (bool, error) {
	st, err := c.status(ctx)
	if err != nil {
		return false, err
	}
	for _, g := range st.Groups {
		if g.GroupID != gid || !g.Admin {
			continue
		}
		for _, m := range g.Members {
			if m.PublicID == pub.String() {
				return m.Admin == admin, nil
			}
		}
	}
	return false, nil
}
