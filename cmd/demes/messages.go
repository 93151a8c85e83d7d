package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// runMessages prints a group's messages in group order: the committed ones,
// then those still in this node's outbox.
func runMessages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("messages [--group G] [--limit N] [--before MESSAGE_ID] [--json]", stdout, "print an array of id, index, author, text, sent_at, ... as JSON", true)
	limit := f.Int("limit", 0, "print at most the N newest messages (before --before); 0: all")
	before := f.String("before", "", "print the messages right before the one with this id (a page further back)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	if *limit < 0 || *limit > api.MaxPage {
		return f.usagef("--limit takes 1 to %d messages (0: all)", api.MaxPage)
	}
	q := url.Values{}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *before != "" {
		q.Set("before", *before)
	}
	path := api.GroupPath(api.RouteMessages, g.GroupID)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var ms []api.Message
	if _, err := c.call(ctx, http.MethodGet, path, nil, &ms, apiTimeout); err != nil {
		return err
	}
	if *f.json {
		if ms == nil {
			ms = []api.Message{}
		}
		return writeJSON(stdout, ms)
	}
	for _, m := range ms {
		fmt.Fprintln(stdout, formatMessage(m))
	}
	return nil
}

// formatMessage is one line of `demes messages`:
// "[index] time author: text", with "[queued]" for a message in the outbox.
func formatMessage(m api.Message) string {
	pos := "[" + strconv.FormatUint(m.Index, 10) + "]"
	if m.State == api.StateQueued {
		pos = "[queued]"
	}
	return fmt.Sprintf("%s %s %s: %s", pos, m.SentAt.Local().Format(time.DateTime),
		clean(authorName(m.Name, m.Author), " "), clean(m.Text, "    "))
}

// authorName shows a member by display name, else by fingerprint, which is
// shorter than the public id and what people compare.
func authorName(name, publicID string) string {
	if name != "" {
		return name
	}
	if p, err := identity.ParsePublicID(publicID); err == nil {
		return p.Fingerprint()
	}
	return publicID
}
