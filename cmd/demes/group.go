package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
	"github.com/demes/demes/state"
)

// runGroup is `demes group create NAME`, a new group with this node as its
// only member and host (the group id is the last line of stdout), `demes
// group settings`, which prints a group's settings and, with a flag,
// changes them, and `demes group rename NAME`.
func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("group create NAME [--json] | group settings [--group G] [--members-invite=true|false] [--msgs-per-minute N] [--bytes-per-day N] [--relay ADDR]... [--no-relays] [--json] | group rename NAME [--group G]",
		stdout, "print the group (create) or the settings (settings) as JSON", true)
	membersInvite := f.Bool("members-invite", false, "settings: let every member invite (true), or only admins (false); admins may change it")
	msgsPerMinute := f.Uint("msgs-per-minute", 0, "settings: how many messages each member may send per minute (0: the default, 120)")
	bytesPerDay := f.Uint64("bytes-per-day", 0, "settings: how many bytes of messages each member may send per day (0: the default, 50 MiB; else at least 1 MiB)")
	var relays listFlag
	f.Var(&relays, "relay", "settings: list the circuit relay at `ADDR` (the last line 'demes relay' printed) in the group's settings, replacing the relays listed before; repeatable, at most 8; every member's node that runs libp2p reserves a slot on each")
	noRelays := f.Bool("no-relays", false, "settings: take every relay out of the group's settings")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return f.usagef("missing the subcommand: create, settings or rename")
	}
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch pos[0] {
	case "create":
		for _, name := range []string{"group", "members-invite", "msgs-per-minute", "bytes-per-day", "relay", "no-relays"} {
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
		if set["relay"] && set["no-relays"] {
			return f.usagef("--relay and --no-relays go one without the other")
		}
		if err := checkQuotas(f, set, *msgsPerMinute, *bytesPerDay); err != nil {
			return err
		}
		if set["relay"] {
			if relays, err = checkRelays(relays); err != nil {
				return err
			}
		}
		change := func(s *api.GroupSettings) bool {
			if set["members-invite"] {
				s.MembersInvite = *membersInvite
			}
			if set["msgs-per-minute"] {
				s.MsgsPerMinute = uint32(*msgsPerMinute) // checkQuotas: it fits
			}
			if set["bytes-per-day"] {
				s.BytesPerDay = *bytesPerDay
			}
			if set["relay"] {
				s.Relays = relays
			}
			if set["no-relays"] && *noRelays {
				s.Relays = []string{}
			}
			return set["members-invite"] || set["msgs-per-minute"] || set["bytes-per-day"] || set["relay"] || (set["no-relays"] && *noRelays)
		}
		return groupSettings(ctx, f, change, stdout, stderr)
	case "rename":
		for _, name := range []string{"members-invite", "msgs-per-minute", "bytes-per-day", "relay", "no-relays", "json"} {
			if set[name] {
				return f.usagef("--%s goes with group settings, not group rename", name)
			}
		}
		return renameGroup(ctx, f, pos[1:], stderr)
	}
	return f.usagef("unknown subcommand %q: the ones there are, are create, settings and rename", pos[0])
}

// renameGroup renames the group (admins may) and returns once the new name
// is committed.
func renameGroup(ctx context.Context, f *nodeFlags, words []string, stderr io.Writer) error {
	name := strings.TrimSpace(strings.Join(words, " "))
	if name == "" {
		return f.usagef("missing the group's new NAME")
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteRename, g.GroupID), api.RenameRequest{Name: name}, nil, changeTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: renamed %q to %q\n", clean(g.Name, " "), clean(name, " "))
	return nil
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

// groupSettings prints the group's settings; when change changes them, it
// writes them first, keeping the others as they are (PUT replaces the whole
// of them).
func groupSettings(ctx context.Context, f *nodeFlags, change func(*api.GroupSettings) bool, stdout, stderr io.Writer) error {
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	path := api.GroupPath(api.RouteSettings, g.GroupID)
	var s api.GroupSettings
	if _, err := c.call(ctx, http.MethodGet, path, nil, &s, apiTimeout); err != nil {
		return err
	}
	if change(&s) {
		if err := stillMember(g); err != nil {
			return err
		}
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
	tw := newTable(stdout)
	fmt.Fprintf(tw, "members-invite\t%t\t(%s)\n", s.MembersInvite, who)
	fmt.Fprintf(tw, "msgs-per-minute\t%d\t(messages each member may send per minute)\n", s.MsgsPerMinute)
	fmt.Fprintf(tw, "bytes-per-day\t%d\t(bytes of messages each member may send per day)\n", s.BytesPerDay)
	if len(s.Relays) == 0 {
		fmt.Fprintf(tw, "relays\tnone\t(add one with --relay ADDR)\n")
	} else {
		fmt.Fprintf(tw, "relays\t%d\t(members reserve a slot on each)\n", len(s.Relays))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Below the table, one a line: an address is long, and in a column it
	// would push the others' notes far to the right.
	for _, r := range s.Relays {
		fmt.Fprintf(stdout, "  %s\n", clean(r, " "))
	}
	return nil
}

// checkQuotas refuses, as bad usage and before the node is asked, a quota
// the settings cannot hold or the node would refuse, saying what may be
// given: a byte quota under state.MinBytesPerDay (the largest message
// would not fit in a member's day), a message quota over 32 bits (it was
// cut to the largest that fits).
func checkQuotas(f *nodeFlags, set map[string]bool, msgsPerMinute uint, bytesPerDay uint64) error {
	if set["msgs-per-minute"] && msgsPerMinute > math.MaxUint32 {
		return f.usagef("--msgs-per-minute %d is too large: give 1 to %d messages a minute, or 0 for the default (%d)",
			msgsPerMinute, uint32(math.MaxUint32), state.DefaultMsgsPerMinute)
	}
	if set["bytes-per-day"] && bytesPerDay != 0 && bytesPerDay < state.MinBytesPerDay {
		return f.usagef("--bytes-per-day %d is too small for the largest message: give at least %d (1 MiB), or 0 for the default (%d, 50 MiB)",
			bytesPerDay, state.MinBytesPerDay, state.DefaultBytesPerDay)
	}
	return nil
}

// relayHint says what a relay address looks like.
const relayHint = "give the address 'demes relay' printed on its last line: a multiaddr ending in the relay's /p2p/ peer id, such as /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."

// checkRelays puts the --relay values in the form the settings carry and
// refuses, as bad usage and before the node is asked, those the node would
// refuse: one that is no relay address, the same relay twice, too many.
func checkRelays(in []string) ([]string, error) {
	out := make([]string, len(in))
	for i, r := range in {
		nr, err := state.NormalizeRelay(r)
		if err != nil {
			return nil, usageError(fmt.Errorf("--relay: %w", err), relayHint)
		}
		out[i] = nr
	}
	if err := state.CheckRelays(out); err != nil {
		return nil, usageError(fmt.Errorf("--relay: %w", err), relayHint)
	}
	return out, nil
}
