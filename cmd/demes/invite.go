package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/state"
)

// Invite lifetimes: what the node accepts, and its default.
const (
	minInviteLifetime = time.Minute
	maxInviteLifetime = state.MaxInviteLifetime
)

// runInvite authorizes a public id to join a group and prints the invite
// code, to pass to that person; with --revoke it revokes an open invite
// instead. When the group cannot commit (a majority of its voters offline),
// the node queues the invite: invite says so and exits 3, and the same
// command run again once the invite has committed prints its code.
func runInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("invite PUBLIC_ID [--group G] [--expires DURATION] [--json] | invite --revoke CODE_OR_PUBLIC_ID [--group G]",
		stdout, "print the code as JSON", true)
	expires := f.String("expires", "", "how long the invite lasts, a `DURATION` such as 48h, 7d or 1d12h (default 7d; from a minute to 90 days)")
	revoke := f.String("revoke", "", "revoke the open invite with this `CODE_OR_PUBLIC_ID` instead of making one")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *revoke != "" {
		if *expires != "" {
			return f.usagef("--expires does not go with --revoke")
		}
		if err := f.wantArgs(pos, 0, ""); err != nil {
			return err
		}
		return revokeInvite(ctx, f, strings.TrimSpace(*revoke), stderr)
	}
	if err := f.wantArgs(pos, 1, "the PUBLIC_ID to invite (the demes1... line of 'demes id' on their machine)"); err != nil {
		return err
	}
	ttl := state.DefaultInviteLifetime
	if *expires != "" {
		if ttl, err = parseLifetime(*expires); err != nil {
			return f.usageErr(fmt.Errorf("--expires: %w", err))
		}
	}
	// Checked here too, so a typo is caught before anything is asked of the
	// node, with the precise reason (prefix, length, checksum): bad usage
	// (exit 2), as every malformed argument is.
	pub, err := parsePublicIDArg(pos[0], "public id")
	if err != nil {
		return usageError(err, publicIDHint("their", "the line 'demes id' prints on their machine"))
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	req := api.InviteRequest{PublicID: pub.String(), ExpiresInSeconds: int64(ttl / time.Second)}
	var out api.InviteResponse
	status, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteInvites, g.GroupID), req, &out, changeTimeout)
	if err != nil {
		return err
	}
	// 202: the group cannot commit now; the node commits the invite when
	// it can, and this same command then prints its code.
	queued := status == http.StatusAccepted || out.State == api.InviteQueued
	if *f.json {
		if err := writeJSON(stdout, out); err != nil {
			return err
		}
		if queued {
			return &exitError{code: exitAccepted}
		}
		return nil
	}
	if queued {
		msg := out.Message
		if msg == "" {
			msg = "queued: the group cannot commit now; run the same 'demes invite' again once enough of the group is online to get the code"
		}
		fmt.Fprintf(stderr, "demes: %s\n", msg)
		return &exitError{code: exitAccepted}
	}
	fmt.Fprintf(stderr, "demes: invite for %s to %q, valid for %s; they run: demes join CODE\n", pub.Fingerprint(), clean(g.Name, " "), lifetime(ttl))
	fmt.Fprintln(stdout, out.Code)
	return nil
}

// revokeInvite is `demes invite --revoke CODE_OR_PUBLIC_ID`. A code names
// its group, so --group may be left out with one even when the node is in
// several groups.
func revokeInvite(ctx context.Context, f *nodeFlags, which string, stderr io.Writer) error {
	var invitee identity.PublicID
	if pub, err := identity.ParsePublicID(which); err == nil {
		invitee = pub
	} else if inv, cerr := node.ParseInvite(which); cerr == nil {
		invitee = inv.Invitee
		if *f.group == "" {
			*f.group = inv.Group.String()
		}
	} else {
		return usageError(fmt.Errorf("%q is neither an invite code nor a public id", short(which)),
			"give the invite code, or the public id of the person invited ('demes invites' lists them)")
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteRevoke, g.GroupID), api.RevokeRequest{Invite: which}, nil, changeTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: revoked the invite for %s to %q; its code no longer lets anyone join\n", invitee.Fingerprint(), clean(g.Name, " "))
	return nil
}

// parseLifetime reads an invite's lifetime: a Go duration ("48h", "90m"),
// or whole days with a d suffix, alone or before one ("7d", "1d12h"). It
// must be from a minute to 90 days, as the node allows.
func parseLifetime(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration such as 48h, 7d or 1d12h", s)
	var d time.Duration
	rest := s
	if days, after, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, bad
		}
		d, rest = time.Duration(n)*24*time.Hour, after
	}
	if rest != "" {
		if strings.ContainsAny(rest[:1], "+-") {
			return 0, bad
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		d += r
	}
	if d < minInviteLifetime || d > maxInviteLifetime {
		return 0, fmt.Errorf("an invite lasts from a minute to %d days, not %s", maxInviteLifetime/(24*time.Hour), s)
	}
	return d, nil
}

// lifetime writes a duration as people say it: "7 days", "1 day 12 hours",
// "90 minutes".
func lifetime(d time.Duration) string {
	d = d.Round(time.Minute)
	days, hours, mins := d/(24*time.Hour), d%(24*time.Hour)/time.Hour, d%time.Hour/time.Minute
	var parts []string
	for _, p := range []struct {
		n    time.Duration
		unit string
	}{{days, "day"}, {hours, "hour"}, {mins, "minute"}} {
		switch {
		case p.n == 1:
			parts = append(parts, "1 "+p.unit)
		case p.n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", p.n, p.unit))
		}
	}
	if len(parts) == 0 {
		return "less than a minute"
	}
	return strings.Join(parts, " ")
}

// short cuts what a person typed for an error line.
func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
