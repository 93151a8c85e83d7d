package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/demes/demes/api"
	"github.com/demes/demes/node"
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
	target := strings.TrimSpace(pos[0])
	if err := checkReconnectTarget(target); err != nil {
		return err
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "demes: reconnecting; this returns once the node has caught up from that member")
	var res api.ReconnectResponse
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteReconnect, g.GroupID), api.ReconnectRequest{Target: target}, &res, joinTimeout); err != nil {
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

// checkReconnectTarget refuses, before the node is asked, a TARGET that is
// neither a peer URL nor an invite code: bad usage (exit 2), as every
// malformed argument is. Whether anyone answers there is the node's to find
// out (exit 1).
func checkReconnectTarget(target string) error {
	const hint = "give a current member's peer URL ('demes status' on that member shows it as peer url) or an invite code of the group"
	if strings.HasPrefix(target, node.InvitePrefix) {
		if _, err := node.ParseInvite(target); err != nil {
			return usageError(err, "copy the whole invite code")
		}
		return nil
	}
	if !isPeerURL(target) {
		return usageError(fmt.Errorf("%q is neither a member's peer URL (http://HOST:PORT) nor an invite code", short(target)), hint)
	}
	return nil
}

// isPeerURL reports whether s reads as a node's HTTP peer URL:
// http://HOST:PORT or https://HOST[:PORT].
func isPeerURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
