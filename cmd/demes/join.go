package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node"
)

// runJoin joins a group through an invite code. It returns once this node is
// a member and has caught up with the group's log, which can take a while.
func runJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("join INVITE [--json]", stdout, "print group_id and name as JSON", false)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the INVITE code"); err != nil {
		return err
	}
	code := strings.TrimSpace(pos[0])
	// A code that is none, or was cut when copied, is bad usage, said
	// before anything is asked of the node (and before the line that
	// says the join may take a while), as for a malformed id. Whether
	// the invite is for this node and still valid is the node's to say.
	if !strings.HasPrefix(code, node.InvitePrefix) {
		return usageError(fmt.Errorf("%q is not an invite code: it must start with %q", short(code), node.InvitePrefix),
			"paste the whole code that 'demes invite' printed for you")
	}
	if _, err := node.ParseInvite(code); err != nil {
		return usageError(err, "copy the whole invite code")
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	// A join the group cannot commit takes the node's whole give-up
	// time (node.Config.JoinGiveUp, 90 s by default) with nothing else
	// said: the wait is named up front.
	fmt.Fprintln(stderr, "demes: joining; this returns once the node has caught up with the group (while most of the group is offline, it gives up after 90 s)")
	var g api.GroupInfo
	if _, err := c.call(ctx, http.MethodPost, api.RouteJoin, api.JoinRequest{Code: code}, &g, joinTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, g)
	}
	fmt.Fprintf(stderr, "demes: joined %q\n", clean(g.Name, " "))
	fmt.Fprintln(stdout, g.GroupID)
	return nil
}
