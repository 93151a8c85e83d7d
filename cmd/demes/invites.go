package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/demes/demes/api"
)

// runInvites lists a group's open invites: whom each lets in, who made it,
// and when it expires; the public id last, to pass to 'invite --revoke'.
// This node's queued invites (made while the group could not commit) come
// last, marked queued, with state "queued" in --json (else "open").
func runInvites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("invites [--group G] [--json]", stdout, "print an array of invitee, inviter, expires_at and state as JSON", true)
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
	var list []api.PendingInvite
	if _, err := c.call(ctx, http.MethodGet, api.GroupPath(api.RouteInvites, g.GroupID), nil, &list, apiTimeout); err != nil {
		return err
	}
	if *f.json {
		if list == nil {
			list = []api.PendingInvite{} // [] rather than null: scripts iterate it
		}
		return writeJSON(stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stderr, "demes: no open invites in %q\n", clean(g.Name, " "))
		return nil
	}
	printInvites(stdout, list, time.Now())
	return nil
}

// printInvites writes the table of `demes invites`, the times in now's
// location.
func printInvites(w io.Writer, list []api.PendingInvite, now time.Time) {
	tw := newTable(w)
	fmt.Fprintln(tw, "INVITEE\tINVITED BY\tEXPIRES\tPUBLIC ID")
	for _, inv := range list {
		fp := inv.Fingerprint
		if fp == "" {
			fp = authorName("", inv.Invitee)
		}
		left := "expired"
		if d := inv.ExpiresAt.Sub(now); d > 0 {
			left = "in " + lifetime(d)
		}
		if inv.State == api.InviteQueued {
			// Not in the log yet: no code, and nobody can join with it.
			left += "; queued, no code yet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\n", clean(fp, " "), clean(authorName(inv.InviterName, inv.Inviter), " "),
			inv.ExpiresAt.In(now.Location()).Format("2006-01-02 15:04 MST"), left, clean(inv.Invitee, ""))
	}
	tw.Flush()
}
