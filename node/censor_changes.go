package node

import (
	"sync"
	"time"
)

// changeWaits are the changes commitUntil is proposing, each waiting from
// its first proposal until one of its own proposals is applied (accepted
// or refused) or commitUntil gives up. Not until any later entry of this
// node's is applied, as control says: a host may commit this node's later
// chat messages and drop the change, and the wait, restarted at each
// proposal, never reached CensorAfter (TestHostRefusesItsOwnRemovalNotOurChat).
type changeWaits struct {
	mu sync.Mutex
	m  map[*changeWait]struct{}
}

type changeWait struct {
	at    time.Time
	spans [][2]uint64 // the counters signed by each proposal: (from, to]
}

// proposed records that w (nil for a new change) proposed what was signed
// after counter from up to to, and returns it.
func (c *changeWaits) proposed(w *changeWait, from, to uint64) *changeWait {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w == nil {
		w = &changeWait{at: time.Now()}
		if c.m == nil {
			c.m = map[*changeWait]struct{}{}
		}
		c.m[w] = struct{}{}
	}
	w.spans = append(w.spans, [2]uint64{from, to})
	return w
}

// applied ends the wait of a change one of whose proposals is counter.
func (c *changeWaits) applied(counter uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.m {
		for _, s := range w.spans {
			if counter > s[0] && counter <= s[1] {
				delete(c.m, w)
				break
			}
		}
	}
}

// done ends w's wait: commitUntil returned.
func (c *changeWaits) done(w *changeWait) {
	if w == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, w)
}

// oldest is when the change waiting longest was first proposed, zero when
// none waits.
func (c *changeWaits) oldest() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for w := range c.m {
		if t.IsZero() || w.at.Before(t) {
			t = w.at
		}
	}
	return t
}
