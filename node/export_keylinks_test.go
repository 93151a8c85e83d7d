package node

import (
	"context"
	"fmt"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
)

// StartKeyUnsent has n start a new sender key of its own in the group and
// seal its key header to the members' current prekeys, as for a first
// message under it that is then lost on its way (a leadership change): the
// links the header starts or carries count that key as their carrier. It
// returns how many links n holds pending then.
func StartKeyUnsent(n *Node, groupID string) (int, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return 0, err
	}
	var pending int
	var ferr error
	err = g.do(context.Background(), func() {
		now := time.Now()
		key := g.keys.Rotate(g.st.Epoch)
		g.keyUse[key.ID] = keyUse{born: now}
		g.n.keys.keep(g.id, key)
		var pks []*prekey.Prekey
		for _, r := range g.st.Recipients() {
			p, err := g.prekeyOf(r.Sign, now)
			if err != nil {
				ferr = fmt.Errorf("prekey of %x: %w", r.Sign[:4], err)
				return
			}
			pks = append(pks, p)
		}
		if _, err := g.keyHeader(key, pks, now); err != nil {
			ferr = err
			return
		}
		_, pending = g.links.counts()
	})
	if err == nil {
		err = ferr
	}
	return pending, err
}

// RotatePrekeyValidFrom makes n start using a new prekey valid only from
// from: what its weekly rotation publishes, seen by a member whose clock
// is behind by more than a minute.
func RotatePrekeyValidFrom(n *Node, from time.Time) error {
	return n.keys.Rotate(from.Add(time.Minute))
}

// ProposePrekeySkewed proposes n's current prekey in the group, signed at
// ahead of now: what a member whose clock is ahead by that much publishes.
func ProposePrekeySkewed(n *Node, groupID string, ahead time.Duration) error {
	g, err := n.groupByText(groupID)
	if err != nil {
		return err
	}
	e := &crypto.Envelope{Type: crypto.TypePrekey, Group: g.id, Payload: n.keys.Current()}
	e.Counter = n.counter.Next()
	e.Time = time.Now().Add(ahead).UnixNano()
	frame, err := crypto.Sign(n.id, e)
	if err != nil {
		return err
	}
	var perr error
	if err := g.do(context.Background(), func() { perr = g.rn.Propose(frame) }); err != nil {
		return err
	}
	return perr
}

// StoredPrekeys returns how many prekey secrets n's key store keeps.
func StoredPrekeys(n *Node) int { return len(n.keys.store.List("prekey/")) }
