package node

import "testing"

// TestNoteRead: which read marks a node keeps from the pings and pongs it
// accepted. Only a current member that reads (not a keeper, which reads
// nothing, and not this node's own key) moves its own mark, only forward;
// and only a mark that moved tells the UI, so a member repeating its mark
// in every ping costs no refresh.
func TestNoteRead(t *testing.T) {
	key := func(b byte) [32]byte { return [32]byte{b} }
	self, member, keeper, stranger := key(1), key(2), key(3), key(4)
	n := &Node{events: newBroadcaster()}
	n.self.Sign = self
	n.readReceipts.Store(true)
	g := &group{n: n}
	g.view.Store(&view{members: map[[32]byte]viewMember{self: {voter: true}, member: {voter: true}, keeper: {voter: true, keeper: true}}})
	events, stop := n.events.subscribe()
	defer stop()
	published := func() int {
		k := 0
		for {
			select {
			case <-events:
				k++
			default:
				return k
			}
		}
	}
	for _, tc := range []struct {
		name   string
		from   [32]byte
		x      pingExtra
		want   uint64 // the sender's mark afterwards
		events int
	}{
		{"a member's mark", member, pingExtra{flags: pingRead, read: 5}, 5, 1},
		{"the same mark again", member, pingExtra{flags: pingRead, read: 5}, 5, 0},
		{"a lower mark (an old ping)", member, pingExtra{flags: pingRead, read: 3}, 5, 0},
		{"a mark without the flag", member, pingExtra{read: 9}, 5, 0},
		{"a higher mark", member, pingExtra{flags: pingRead | pingSuspect, read: 6}, 6, 1},
		{"a keeper's mark", keeper, pingExtra{flags: pingRead, read: 7}, 0, 0},
		{"a stranger's mark", stranger, pingExtra{flags: pingRead, read: 7}, 0, 0},
		{"a mark under this node's own key", self, pingExtra{flags: pingRead, read: 7}, 0, 0},
	} {
		g.noteRead(tc.from, tc.x)
		if got := g.reads.get(tc.from); got != tc.want {
			t.Errorf("%s: mark %d, want %d", tc.name, got, tc.want)
		}
		if got := published(); got != tc.events {
			t.Errorf("%s: %d status events, want %d", tc.name, got, tc.events)
		}
	}
	// With read receipts off, marks are kept (they were sent) but
	// nothing is shown, so nothing is published.
	n.readReceipts.Store(false)
	g.noteRead(member, pingExtra{flags: pingRead, read: 8})
	if got, ev := g.reads.get(member), published(); got != 8 || ev != 0 {
		t.Errorf("receipts off: mark %d, %d events; want 8, 0", got, ev)
	}
}
