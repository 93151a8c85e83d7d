package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/demes/demes/api"
)

// runGroup is `demes group create NAME`, a new group with this node as its
// only member and host (the group id is the last line of stdout), and
// `demes group settings`, which prints a group's settings and, with a flag,
// changes them.
func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("group create NAME [--json] | group settings [--group G] [--members-invite=true|false] [--json]",
		stdout, "print the group (create) or the settings (settings) as JSON", true)
	membersInvite := f.Bool("members-invite", false, "settings: let every member invite (true), or only admins (false); admins may change it")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return f.usagef("missing the subcommand: create or settings")
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch pos[0] {
	case "create":
		for _, name := range []string{"group", "members-invite"} {
			if set[name] {
				return f.usagef("--%s goes with group settings, not group create", name)
			}
		}
		f.withGroup = false
		return createGroup(ctx, f, pos[1:], stdout)
	case "settings":
		if err := f.wantArgs(pos[1:], 0, ""); err != nil {
			return err
		}
		var change *bool
		if set["members-invite"] {
			change = membersInvite
		}
		return groupSettings(ctx, f, change, stdout, stderr)
	}
	return f.usagef("unknown subcommand %q: the ones there are, are create and settings", pos[0])
}

func createGroup(ctx context.Context, f *nodeFlags, words []string, stdout io.Writer) error {
	// A name with spaces may come quoted or not: `group create book club`.
	name := strings.TrimSpace(strings.Join(words, " "))
	if name == "" {
		return f.usagef("missing the group's NAME")
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	var g api.GroupInfo
	if _, err := c.call(ctx, http.MethodPost, api.RouteGroups, api.CreateGroupRequest{Name: name}, &g, apiTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, g)
	}
	fmt.Fprintln(stdout, g.GroupID)
	return nil
}

// groupSettings prints the group's settings; with membersInvite set, it
// changes that setting first, keeping the others as they are (PUT
// replaces the whole of them).
func groupSettings(ctx context.Context, f *nodeFlags, membersInvite *bool, stdout, stderr io.Writer) error {
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	path := api.GroupPath(api.RouteSettings, g.GroupID)
	var s api.GroupSettings
	if _, err := c.call(ctx, http.MethodGet, path, nil, &s, apiTimeout); err != nil {
		return err
	}
	if membersInvite != nil {
		s.MembersInvite = *membersInvite
		if _, err := c.call(ctx, http.MethodPut, path, s, &s, changeTimeout); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "demes: changed the settings of %q\n", clean(g.Name, " "))
	}
	if *f.json {
		return writeJSON(stdout, s)
	}
	who := "only admins may invite"
	if s.MembersInvite {
		who = "every member may invite"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "members-invite\t%t\t(%s)\n", s.MembersInvite, who)
	return tw.Flush()
}
