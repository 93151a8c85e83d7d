package node

import (
	"context"
	"slices"
	"time"

	"github.com/demes/demes/state"
)

// Invite codes and the group's relays (docs/PROTOCOL.md, "Joining"). A code
// made in a group whose settings list circuit relays carries them, as a
// seventh element of its body; a code without relays keeps the six elements
// of codes from before relays, so that every code still reads. The joiner
// holds a slot on them from the start of its join (Config.Relays), before
// it has the group's settings: the URL it joins with then names a circuit
// address through them, and members that cannot dial it directly (it is
// behind a router, or on a network they have no route to) reach it there.

// inviteCodeV1 is an invite code's body without relays.
type inviteCodeV1 struct {
	_         struct{} `cbor:",toarray"`
	GroupName string
	Invitee   []byte
	Inviter   []byte
	URLs      []string
	Index     uint64
	Expires   int64
}

// inviteCodeWire is an invite code's body with relays: its fields, in a
// type without the methods below, so that encoding it does not call them.
type inviteCodeWire inviteCode

// MarshalCBOR writes the six-element array when the code carries no relays,
// the seven-element one otherwise.
func (b inviteCode) MarshalCBOR() ([]byte, error) {
	if len(b.Relays) == 0 {
		return state.Encode(inviteCodeV1{GroupName: b.GroupName, Invitee: b.Invitee, Inviter: b.Inviter, URLs: b.URLs, Index: b.Index, Expires: b.Expires})
	}
	return state.Encode(inviteCodeWire(b))
}

// UnmarshalCBOR reads either array. A seven-element array with no relays
// decodes, but state.Decode refuses it: its canonical form has six.
func (b *inviteCode) UnmarshalCBOR(data []byte) error {
	if len(data) > 0 && data[0] == 0x87 {
		return state.Decode(data, (*inviteCodeWire)(b))
	}
	var v inviteCodeV1
	if err := state.Decode(data, &v); err != nil {
		return err
	}
	*b = inviteCode{GroupName: v.GroupName, Invitee: v.Invitee, Inviter: v.Inviter, URLs: v.URLs, Index: v.Index, Expires: v.Expires}
	return nil
}

// joinRelays are the relays of the invites whose joins are under way, each
// once, for groupRelays.
func (n *Node) joinRelays() []string {
	n.joinRelaysMu.Lock()
	defer n.joinRelaysMu.Unlock()
	var out []string
	for _, rs := range n.joinRelaysBy {
		out = append(out, rs...)
	}
	return out
}

// useInviteRelays has this node hold a slot on the relays of inv while its
// join runs (after it, the group's settings name them): it adds them to the
// relays reported to Config.Relays, then waits, up to inviteRelaysWait,
// for this node's URL to change, so that the join it is about to send names
// its circuit addresses through them. The returned function takes them
// back.
func (n *Node) useInviteRelays(ctx context.Context, inv *ParsedInvite) func() {
	if len(inv.Relays) == 0 || n.cfg.Relays == nil {
		return func() {}
	}
	held := n.groupRelays()
	fresh := false
	for _, r := range inv.Relays {
		if !slices.Contains(held, r) {
			fresh = true
		}
	}
	key := new(int)
	n.joinRelaysMu.Lock()
	if n.joinRelaysBy == nil {
		n.joinRelaysBy = map[*int][]string{}
	}
	n.joinRelaysBy[key] = inv.Relays
	n.joinRelaysMu.Unlock()
	before := n.URL()
	n.pokeRelays()
	if fresh {
		n.log.Info().Strs("relays", inv.Relays).Msg("joining through the relays the invite names")
		wctx, cancel := context.WithTimeout(ctx, inviteRelaysWait)
		t := time.NewTicker(20 * time.Millisecond)
		for n.URL() == before && wctx.Err() == nil {
			select {
			case <-wctx.Done():
			case <-t.C:
			}
		}
		t.Stop()
		cancel()
	}
	return func() {
		n.joinRelaysMu.Lock()
		delete(n.joinRelaysBy, key)
		n.joinRelaysMu.Unlock()
		n.pokeRelays()
	}
}

// inviteRelaysWait bounds how long a join waits for this node's URL to name
// the invite's relays: the address update that follows a slot is local
// (the libp2p host's addresses), so it comes within milliseconds where it
// comes at all, and a node whose URL does not follow its host's never sees
// it.
const inviteRelaysWait = 2 * time.Second
