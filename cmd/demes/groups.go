package main

import (
	"context"
	"fmt"
	"io"

	"github.com/demes/demes/api"
)

// runGroups lists the node's groups: id and name, one per line.
func runGroups(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("groups [--json]", stdout, "print an array of group_id, name and left (true for a group this node left or was removed from) as JSON", false)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	gs, err := c.groups(ctx)
	if err != nil {
		return err
	}
	if *f.json {
		if gs == nil {
			gs = []api.GroupInfo{} // [] rather than null: scripts iterate it
		}
		return writeJSON(stdout, gs)
	}
	if len(gs) == 0 {
		fmt.Fprintln(stderr, "demes: this node is in no group yet (demes group create NAME, or demes join INVITE)")
		return nil
	}
	tw := newTable(stdout)
	for _, g := range gs {
		left := ""
		switch {
		case g.RemovedBy != "":
			left = "\t(removed by " + clean(authorName(g.RemovedByName, g.RemovedBy), " ") + ": history only)"
		case g.Left:
			left = "\t(left: history only)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", g.GroupID, clean(g.Name, " "), left)
	}
	return tw.Flush()
}
