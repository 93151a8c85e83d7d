package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// runMessages prints a group's messages in group order: the committed ones,
// then those still in this node's outbox.
func runMessages(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("messages [--group G] [--limit N] [--before MESSAGE_ID] [--ids] [--json]", stdout, "print an array of id, index, author, text, sent_at, ... as JSON", true)
	ids := f.Bool("ids", false, "start each line with the message's id (to reply, react, edit or delete)")
	limit := f.Int("limit", 0, "print at most the N newest messages (before --before); without it, every one")
	before := f.String("before", "", "print the messages right before the one with this id (a page further back)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	limited := false
	f.Visit(func(fl *flag.Flag) { limited = limited || fl.Name == "limit" })
	if limited && (*limit < 1 || *limit > api.MaxPage) {
		return f.usagef("--limit takes 1 to %d messages", api.MaxPage)
	}
	// A malformed id is bad usage (exit 2), as for react or download.
	if *before != "" {
		if err := checkMessageID(f, *before); err != nil {
			return err
		}
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	ms, err := fetchMessages(ctx, c, g.GroupID, *limit, *before)
	if err != nil {
		if *before != "" && strings.HasPrefix(errorText(err), "no message ") {
			return withHint(errors.Unwrap(err), "'demes messages --limit 20 --json' shows the ids of the newest messages")
		}
		if *before != "" && strings.Contains(errorText(err), ", not of a message") {
			return withHint(errors.Unwrap(err), "--before takes the id of a message, such as the first of a page: 'demes messages --ids' shows them")
		}
		return err
	}
	if *f.json {
		if ms == nil {
			ms = []api.Message{}
		}
		return writeJSON(stdout, ms)
	}
	for _, m := range ms {
		line := formatMessage(m)
		if *ids {
			line = m.ID + " " + line
		}
		fmt.Fprintln(stdout, line)
	}
	noteUnreadable(ctx, c, g.GroupID, ms, stderr)
	return nil
}

// noteUnreadable says on stderr why messages are missing when this node
// cannot read part of the group's history: it lost its keys (restored from
// a backup, which holds none, or its key store was lost), or it left and
// joined again, and what was sent while it was away was never sealed to
// it (listed, ms holds messages from before its latest join). Without it,
// a restored node listed the messages since its new keys and said nothing
// of the others, and a rejoined one listed both parts as if nothing lay
// between them. A keeper, which reads no message, says so. Best effort: a
// failed status read says nothing.
func noteUnreadable(ctx context.Context, c *client, groupID string, ms []api.Message, stderr io.Writer) {
	st, err := c.status(ctx)
	if err != nil {
		return
	}
	for _, g := range st.Groups {
		if g.GroupID != groupID {
			continue
		}
		if g.Keys != nil {
			fmt.Fprintf(stderr, "demes: note: messages this node cannot read are not listed: %s\n", clean(g.Keys.Message, " "))
		}
		if joinedAgain(ms, g.JoinedAt) {
			fmt.Fprintf(stderr, "demes: note: this node joined %q again at log index %d: what was sent while it was not a member is not listed (it was never sealed to it)\n", clean(g.Name, " "), g.JoinedAt)
		}
		for _, m := range g.Members {
			if m.Self && m.Keeper {
				// Else an empty list, exit 0, read as a quiet group.
				fmt.Fprintf(stderr, "demes: note: this node is a keeper of %q: it keeps the group's log and reads no message; read them on a member's node\n", clean(g.Name, " "))
			}
		}
	}
}

// fetchMessages reads the messages before the one whose id is before (the
// newest when before is empty), at most limit of them (0: every one), a
// page of at most api.MaxPage at a time from the newest back, so that no
// answer of the node grows with the group's history.
func fetchMessages(ctx context.Context, c *client, groupID string, limit int, before string) ([]api.Message, error) {
	var pages [][]api.Message
	n := 0
	for {
		want := api.MaxPage
		if limit > 0 {
			want = min(want, limit-n)
		}
		q := url.Values{"limit": {strconv.Itoa(want)}}
		if before != "" {
			q.Set("before", before)
		}
		var p api.MessagePage
		if _, err := c.call(ctx, http.MethodGet, api.GroupPath(api.RouteMessages, groupID)+"?"+q.Encode(), nil, &p, apiTimeout); err != nil {
			return nil, err
		}
		pages = append(pages, p.Messages)
		n += len(p.Messages)
		if !p.More || len(p.Messages) == 0 || (limit > 0 && n >= limit) {
			break
		}
		before = p.Messages[0].ID
	}
	out := make([]api.Message, 0, n)
	for i := len(pages) - 1; i >= 0; i-- {
		out = append(out, pages[i]...)
	}
	return out, nil
}

// formatMessage is one line of `demes messages`:
// "[index] time author: text", with "[tentative]" for a message not in the
// group's order yet (one of ours in the outbox, or another member's that
// reached this node directly), and "(held back: over your quota)" after
// one of ours the quota keeps in the outbox. A reply starts its text with
// "(reply to ID8)", the first 8 digits of what it answers; an edited
// message ends with "(edited)", reactions with "[👍 2 🎉 1]"; a deleted
// message reads "(message deleted)"; a file message "(file) NAME, SIZE".
func formatMessage(m api.Message) string {
	pos := "[" + strconv.FormatUint(m.Index, 10) + "]"
	if m.State == api.StateTentative {
		pos = "[tentative]"
	}
	text := clean(m.Text, "    ")
	switch {
	case m.Deleted:
		text = "(message deleted)"
	default:
		if a := m.Attachment; a != nil {
			text = fileText(*a)
		}
		if m.ReplyTo != "" {
			text = "(reply to " + m.ReplyTo[:min(8, len(m.ReplyTo))] + ") " + text
		}
		if m.Edited {
			text += " (edited)"
		}
		if m.Held {
			text += " (held back: over your quota)"
		}
		if len(m.Reactions) > 0 {
			var rs []string
			for _, r := range m.Reactions {
				rs = append(rs, clean(r.Emoji, "")+" "+strconv.Itoa(r.Count))
			}
			text += " [" + strings.Join(rs, " ") + "]"
		}
	}
	return fmt.Sprintf("%s %s %s: %s", pos, m.SentAt.Local().Format(time.DateTime),
		clean(sharedName(m.Name, m.Author, m.AuthorFingerprint, m.NameShared), " "), text)
}

// fileText is a file message's text: "(file) NAME, SIZE", and whether
// this node holds it yet, so that it does not read as a message that says
// the file's name. 'demes download ID' writes it.
func fileText(a api.Attachment) string {
	t := "(file) " + clean(a.Name, " ") + ", " + sizeText(a.Size)
	switch {
	case a.Skipped && !a.Ready:
		t += ", not fetched: demes download fetches it"
	case !a.Ready:
		t += ", still fetching"
	}
	return t
}

// sizeText is a size in bytes for people: 13 bytes, 2.9 KB, 25.0 MB (of
// 1024 and 1024² bytes, as the attachment limit counts them).
func sizeText(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
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

// sharedName is authorName, followed by the member's fingerprint when the
// node says that another member goes by a name that looks the same
// (shared, api.Member.NameShared): "alice (d341 d769 1e1e b07d)", so that
// an impostor's "Alice" reads apart. A name of one's own stays as it is.
// fingerprint is the one the node gave, if any; else it is computed from
// publicID.
func sharedName(name, publicID, fingerprint string, shared bool) string {
	shown := authorName(name, publicID)
	if !shared || name == "" {
		return shown
	}
	if fingerprint == "" {
		fingerprint = authorName("", publicID)
	}
	return shown + " (" + fingerprint + ")"
}

// joinedAgain reports whether ms, messages this node read, holds one
// committed before its latest join (at log index joinedAt): it was a
// member before, since a member reads nothing sent before it joined.
func joinedAgain(ms []api.Message, joinedAt uint64) bool {
	for _, m := range ms {
		if m.State == api.StateCommitted && m.Index > 0 && m.Index < joinedAt {
			return true
		}
	}
	return false
}
