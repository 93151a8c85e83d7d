package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
)

// runReconnect is `demes reconnect TARGET [--group G]`: for a member that was
// away while the others moved or were replaced, so that it knows no live
// member's address. TARGET is a current member's peer URL or an invite code
// of the group (anyone's). The node asks that member for the log it missed,
// checks it, and tells the member where it listens; this returns once it has
// caught up.
func runReconnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("reconnect TARGET [--group G] [--json]", stdout, "print group_id, member, before and after as JSON", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "a current member's peer URL (http://HOST:PORT) or an invite code of the group"); err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "demes: reconnecting; this returns once the node has caught up from that member")
	var res api.ReconnectResponse
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteReconnect, g.GroupID), api.ReconnectRequest{Target: strings.TrimSpace(pos[0])}, &res, joinTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, res)
	}
	if res.After > res.Before {
		fmt.Fprintf(stdout, "caught up in %q: %d log entries\n", clean(g.Name, " "), res.After-res.Before)
	} else {
		fmt.Fprintf(stdout, "in step with that member in %q already; it knows where this node listens now\n", clean(g.Name, " "))
	}
	return nil
}
