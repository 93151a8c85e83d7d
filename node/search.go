package node

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
)

// Search (issue 21). There is no index: an index of the words of messages
// on disk would be plaintext on disk. A search reads the messages this node
// can read, the newest first: those in memory (the window, and the ones not
// in the group's order yet) as they are listed, then the stored ones a chunk
// at a time, each decrypted without its signature check (it was checked
// when applied, and the store is this node's own), as shown (edits and
// deletes applied). It costs a decryption per message searched.

// searchChunk is how many stored messages a search reads per turn of the
// group's goroutine.
const searchChunk = 2000

// Search returns the messages of a group whose text contains query, case
// aside, the newest first, at most limit of them (1 to [api.MaxPage]).
func (n *Node) Search(ctx context.Context, groupID, query string, limit int) ([]Message, error) {
	query = strings.TrimSpace(query)
	if query == "" {
		return nil, fmt.Errorf("search: say what to look for: %w", ErrInvalid)
	}
	if limit < 1 || limit > api.MaxPage {
		return nil, fmt.Errorf("search: at most 1 to %d results, not %d: %w", api.MaxPage, limit, ErrInvalid)
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(query)
	match := func(m Message) bool { return !m.Deleted && strings.Contains(strings.ToLower(m.Text), q) }
	var out []Message
	var ns namesakes
	end := uint64(math.MaxUint64)
	if err := g.do(ctx, func() {
		ns = g.namesakes()
		tent := g.tentativeMessages()
		for i := len(tent) - 1; i >= 0 && len(out) < limit; i-- {
			if match(tent[i]) {
				out = append(out, tent[i])
			}
		}
		h := &g.hist
		for i := len(h.msgs) - 1; i >= 0 && len(out) < limit; i-- {
			m := h.msgs[i]
			g.decorate(&m)
			if match(m) {
				out = append(out, m)
			}
		}
		if len(h.msgs) > 0 {
			end = h.msgs[0].Index
		}
	}); err != nil {
		return nil, err
	}
	for len(out) < limit {
		var sealed []sealedMessage
		var serr error
		if err := g.do(ctx, func() {
			if g.hist.first == 0 || end <= g.hist.first {
				return
			}
			sealed, serr = g.readSealed(end, searchChunk)
		}); err != nil {
			return nil, err
		}
		if serr != nil {
			return nil, serr
		}
		if len(sealed) == 0 {
			break
		}
		for i := len(sealed) - 1; i >= 0 && len(out) < limit; i-- {
			s := sealed[i]
			rec, err := crypto.PeekRecord(s.key, g.id, s.c.Sealed, s.c.Sender, s.c.ID)
			if err != nil {
				continue // a damaged store; paging logs it
			}
			s.m.SentAt = time.Unix(0, rec.Time).UTC()
			cnt, perr := content.Parse(rec.Body)
			content.Show(&s.m, cnt, perr)
			if s.m.Kind != "" {
				continue
			}
			s.note.Decorate(&s.m, n.selfID)
			if match(s.m) {
				out = append(out, s.m)
			}
		}
		end = sealed[0].c.Index
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	ns.markAll(out)
	return out, nil
}
