package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
)

// runGroup is `demes group create NAME`: a new group with this node as its
// only member and host. The group id is the last line of stdout.
func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("group create NAME [--json]", stdout, "print group_id and name as JSON", false)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return f.usagef("missing the subcommand: create")
	}
	if pos[0] != "create" {
		return f.usagef("unknown subcommand %q: the one there is, is create", pos[0])
	}
	// A name with spaces may come quoted or not: `group create book club`.
	name := strings.TrimSpace(strings.Join(pos[1:], " "))
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
