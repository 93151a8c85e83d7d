package node

import (
	"slices"
)

// pokeRelays asks watchRelays to look at the groups' relays again: a
// group's settings changed, or this node joined or left it. Pokes while it
// is busy fold into one.
func (n *Node) pokeRelays() {
	select {
	case n.relaysPoke <- struct{}{}:
	default:
	}
}

// watchRelays reports the relays this node's groups list to Config.Relays:
// once at start, then each time the list changes. One goroutine does it
// all, so that reports come in the order of the changes.
func (n *Node) watchRelays() {
	var last []string
	first := true
	n.pokeRelays() // the groups restored at start
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.relaysPoke:
		}
		now := n.groupRelays()
		if first || !slices.Equal(now, last) {
			first, last = false, now
			n.log.Debug().Strs("relays", now).Msg("the groups' relays changed")
			n.cfg.Relays(now)
		}
	}
}

// groupRelays returns the relays the settings of the groups this node is
// a member of list, and those of the invites it is joining with, sorted,
// each once.
func (n *Node) groupRelays() []string {
	out := n.joinRelays()
	for _, g := range n.groupsNow() {
		if v := g.view.Load(); v != nil && v.self {
			out = append(out, v.settings.Relays...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
