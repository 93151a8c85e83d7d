package main

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/demes/demes/api"
)

// runReceipts is `demes receipts [on|off]`: shows, or changes, whether this
// node's person shares read receipts with the members of every group (and
// so sees theirs). Delivery (which members' devices hold a message) is
// shown either way.
func runReceipts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("receipts [on|off] [--json]", stdout, "print the preferences as JSON", false)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return f.usagef("unexpected argument %q", pos[1])
	}
	var set *bool
	if len(pos) == 1 {
		switch pos[0] {
		case "on":
			set = new(bool)
			*set = true
		case "off":
			set = new(bool)
		default:
			return f.usagef("say on or off, not %q", pos[0])
		}
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	var p api.Preferences
	if set == nil {
		_, err = c.call(ctx, http.MethodGet, api.RoutePreferences, nil, &p, apiTimeout)
	} else {
		_, err = c.call(ctx, http.MethodPut, api.RoutePreferences, api.Preferences{ReadReceipts: *set}, &p, apiTimeout)
	}
	if err != nil {
		return err
	}
	if *f.json {
		return writeJSON(stdout, p)
	}
	if p.ReadReceipts {
		fmt.Fprintln(stdout, "read receipts: on (members see how far you have read, and you see how far they have)")
	} else {
		fmt.Fprintln(stdout, "read receipts: off (members do not see how far you have read, and you do not see theirs)")
	}
	return nil
}
