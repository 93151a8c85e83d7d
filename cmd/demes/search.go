package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/demes/demes/api"
)

// searchTimeout bounds a search: it reads a long history.
const searchTimeout = 2 * time.Minute

// runSearch is `demes search TEXT [--group G] [--limit N]`: the group's
// messages whose text holds TEXT, case aside, the newest first. The node
// keeps no index (it would be plaintext on disk): it reads the messages it
// can read, which costs a decryption per message.
func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("search TEXT [--group G] [--limit N] [--json]", stdout, "print the matching messages as a JSON array", true)
	limit := f.Int("limit", 50, "print at most the N newest matches")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	text := strings.TrimSpace(strings.Join(pos, " "))
	if text == "" {
		return f.usagef("missing the TEXT to look for")
	}
	if *limit < 1 || *limit > api.MaxPage {
		return f.usagef("--limit takes 1 to %d messages", api.MaxPage)
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	q := url.Values{"q": {text}, "limit": {strconv.Itoa(*limit)}}
	var ms []api.Message
	if _, err := c.call(ctx, http.MethodGet, api.GroupPath(api.RouteSearch, g.GroupID)+"?"+q.Encode(), nil, &ms, searchTimeout); err != nil {
		return err
	}
	if *f.json {
		if ms == nil {
			ms = []api.Message{}
		}
		return writeJSON(stdout, ms)
	}
	if len(ms) == 0 {
		fmt.Fprintf(stderr, "demes: no message in %q holds %q\n", clean(g.Name, " "), text)
		noteUnreadable(ctx, c, g.GroupID, nil, stderr)
		return nil
	}
	for _, m := range ms {
		fmt.Fprintln(stdout, m.ID+" "+formatMessage(m))
	}
	return nil
}
