package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
)

// runReform is `demes reform [--group G] [--without PUBLIC_ID] [--json]`: a
// group halted after a fork goes on in a successor group without the member
// that showed members different histories. The first member to run it
// starts the successor and invites the others; a member that was offered
// one whose history matches its own joins it with the same command. It
// prints the successor's group id.
func runReform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("reform [--group G] [--without PUBLIC_ID]", stdout, "print the successor and what was done as one JSON document", true)
	without := f.String("without", "", "the `PUBLIC_ID` of the member to leave out (default: the one your node's proof of the fork names, the host when known)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *without != "" {
		if _, err := memberIDArg(*without); err != nil {
			return err
		}
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	var r api.ReformResult
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteReform, g.GroupID), api.ReformRequest{Without: *without}, &r, joinTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, r)
	}
	for _, o := range r.Refused {
		fmt.Fprintf(stderr, "demes: not joining the successor %s started (%s): %s\n", clean(o.Continues.ByName, " "), o.GroupID, clean(o.Problem, " "))
	}
	name := clean(g.Name, " ")
	who := clean(r.Continues.WithoutName, " ")
	switch r.Action {
	case api.ReformStarted:
		invited := "nobody else"
		if len(r.Invited) > 0 {
			invited = clean(strings.Join(r.Invited, ", "), " ")
		}
		fmt.Fprintf(stderr, "demes: %q continues as a new group without %s, from the history through entry %d; invited %s (their nodes are offered it; each accepts with demes reform)\n", name, who, r.Continues.Index, invited)
	case api.ReformJoined:
		fmt.Fprintf(stderr, "demes: joined the group %s started to continue %q without %s; your history matches theirs through entry %d\n", clean(r.Continues.ByName, " "), name, who, r.Continues.Index)
	default:
		fmt.Fprintf(stderr, "demes: %q already continues as group %s, without %s\n", name, r.GroupID, who)
	}
	fmt.Fprintln(stdout, r.GroupID)
	return nil
}

// printSuccessors says, for a halted group's status, which groups continue
// it and what 'demes reform' would do.
func printSuccessors(w io.Writer, g api.GroupStatus) {
	if len(g.Successors) == 0 {
		fmt.Fprintln(w, "  continue it without the member that forked it: demes reform --group "+g.GroupID)
		return
	}
	for _, s := range g.Successors {
		by := clean(s.Continues.ByName, " ")
		switch {
		case s.Member:
			fmt.Fprintf(w, "  continued in %s (started by %s, without %s)\n", s.GroupID, by, clean(s.Continues.WithoutName, " "))
		case s.Problem == "":
			fmt.Fprintf(w, "  %s continues it in %s without %s: join with demes reform --group %s\n", by, s.GroupID, clean(s.Continues.WithoutName, " "), g.GroupID)
		default:
			fmt.Fprintf(w, "  not joining %s (started by %s): %s\n", s.GroupID, by, clean(s.Problem, " "))
		}
	}
}
