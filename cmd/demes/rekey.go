package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/demes/demes/api"
)

// runRekey is `demes rekey [--group G]`: after a suspected compromise of a
// sender key (a device someone else used, a key that leaked), every member
// seals its next message under a new one. Any member may ask; it returns
// once the request is committed.
func runRekey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("rekey [--group G]", stdout, "", true)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodPost, api.GroupPath(api.RouteRekey, g.GroupID), struct{}{}, nil, joinTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demes: new keys asked for in %q: every member seals its next message under a new sender key\n", clean(g.Name, " "))
	return nil
}
