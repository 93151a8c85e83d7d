package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// runKeeper is `demes keeper add ADDRESS|PUBLIC_ID [--group G]`: an admin
// adds a keeper to a group, an always-on node (`demes serve --keeper`)
// that holds the group's log and votes, so that the group keeps committing
// while some of its people are offline, and that reads nothing. Given the
// keeper's peer URL, the node hands it the invite code and the keeper joins
// by itself; given its public id, the code is printed for the keeper's
// operator (`demes join CODE` on the keeper's home).
func runKeeper(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("keeper add ADDRESS|PUBLIC_ID [--id PUBLIC_ID] [--group G] [--json]", stdout, "print code, keeper and offered as JSON", true)
	want := f.String("id", "", "with a peer URL: the keeper's `PUBLIC_ID` as its operator gave it; the node at the URL must answer it, or nothing is committed")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "add" {
		return f.usagef("say what to do: keeper add ADDRESS|PUBLIC_ID")
	}
	if err := f.wantArgs(pos[1:], 1, "the keeper's peer URL (http://HOST:PORT, as its demes serve --keeper prints) or its public id (demes1...)"); err != nil {
		return err
	}
	target := strings.TrimSpace(pos[1])
	if err := checkKeeperTarget(target); err != nil {
		return err
	}
	if *want != "" {
		if !isPeerURL(target) {
			return f.usagef("--id goes with the keeper's peer URL: keeper add http://HOST:PORT --id PUBLIC_ID")
		}
		if _, err := parsePublicIDArg(*want, "public id"); err != nil {
			return usageError(fmt.Errorf("--id: %w", err), publicIDHint("the keeper's", "the line 'demes id' prints on the keeper's machine"))
		}
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	var res api.KeeperResponse
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteKeepers, g.GroupID), api.KeeperRequest{Target: target, ID: strings.TrimSpace(*want)}, &res, joinTimeout); err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, res)
	}
	if res.Offered {
		fmt.Fprintf(stderr, "demes: keeper %s added to %q; it joins by itself\n", shortID(res.Keeper), clean(g.Name, " "))
	} else {
		fmt.Fprintf(stderr, "demes: keeper %s invited to %q; its operator joins with: demes join CODE (on the keeper's home)\n", shortID(res.Keeper), clean(g.Name, " "))
	}
	fmt.Fprintln(stdout, res.Code)
	return nil
}

// checkKeeperTarget refuses, before the node is asked, a target that is
// neither a public id nor a peer URL: bad usage (exit 2), as every
// malformed argument is.
func checkKeeperTarget(target string) error {
	if isPeerURL(target) {
		return nil
	}
	if _, err := parsePublicIDArg(target, "public id"); err != nil {
		if strings.HasPrefix(strings.ToLower(target), identity.PublicHRP+"1") {
			return usageError(err, publicIDHint("the keeper's", "the line 'demes id' prints on the keeper's machine"))
		}
		return usageError(fmt.Errorf("%q is neither a public id (demes1...) nor a peer URL (http://...)", short(target)),
			"give the keeper's peer URL (http://HOST:PORT, as its demes serve --keeper prints) or its public id")
	}
	return nil
}

// shortID names a public id in a message: by its fingerprint.
func shortID(id string) string {
	// Its fingerprint, as status, invites and the invite line show it.
	if pub, err := identity.ParsePublicID(id); err == nil {
		return pub.Fingerprint()
	}
	if len(id) > 16 {
		return id[:16] + "..."
	}
	return id
}
