package node

import (
	"bytes"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
)

// What a group does with the node's keys (keys.go): it publishes the node's
// prekey in its log, seals its key headers to the members' prekeys, keeps
// the sender keys it makes, and drops from memory those the key store no
// longer keeps.

// sealWithHeader seals m under key with the key header: to every member's
// current prekey (sealed message version 3) when each has a valid one, or
// else, as before prekeys, to the members' identity keys. The fallback is
// for a member that has not published a prekey yet (a newcomer, for the
// moment its first prekey takes to commit) or let it expire (away for more
// than two weeks); it is logged, and the key is replaced as soon as every
// member has a prekey (sealingKey), so that it seals few messages. It
// returns the message as opening it gives (see crypto.SealOwn), except on
// the fallback.
func (g *group) sealWithHeader(m *crypto.Message, key *crypto.SenderKey) ([]byte, *crypto.Opened, error) {
	rs := g.st.Recipients()
	now := time.Now()
	pks := make([]*prekey.Prekey, 0, len(rs))
	for _, r := range rs {
		p, err := g.prekeyOf(r.Sign, now)
		if err != nil {
			if !g.fallback[key.ID] {
				g.n.log.Info().Str("group", g.id.String()).Str("member", fmt.Sprintf("%x", r.Sign[:4])).Str("why", err.Error()).
					Msg("sender key sealed to the members' identity keys, not their prekeys, until every member has a valid prekey")
			}
			g.fallback[key.ID] = true
			g.n.fig.identitySealed.Add(1)
			// This header carries no link root, and the group may
			// register key with it, though an earlier header of key
			// (lost on its way) carried the roots of pending links:
			// none of them may count key as its carrier
			// (keylinks.go). The next header to prekeys starts new
			// ones.
			g.links.drop()
			sealed, err := crypto.SealMessage(g.n.id, m, key, rs)
			return sealed, nil, err
		}
		pks = append(pks, p)
	}
	hdr, err := g.keyHeader(key, pks, now)
	if err != nil {
		return nil, nil, err
	}
	return crypto.SealOwn(g.n.id, m, key, hdr)
}

// sealedHeader is the last key header this node sealed to prekeys: for its
// key and to exactly these prekeys (by id, in the members' order).
type sealedHeader struct {
	ref     crypto.KeyRef
	prekeys [][prekey.IDSize]byte
	hdr     []byte
}

// keyHeader returns key's header sealed to pks, the members' current
// prekeys, each valid at now: the one sealed for the message before when it
// was for the same key and the same prekeys, else a new one. Every message
// sealed under a new key carries its header until the group has registered
// the key, about a commit's time: under load, tens of messages, and sealing
// the header (an X-Wing encapsulation to each member) anew for each took
// more CPU than the rest of sending them. The header is the same either
// way: it names the key and the prekeys, not the message.
func (g *group) keyHeader(key *crypto.SenderKey, pks []*prekey.Prekey, now time.Time) ([]byte, error) {
	c := &g.lastHeader
	if c.hdr != nil && c.ref == key.Ref() && len(c.prekeys) == len(pks) {
		same := true
		for i, p := range pks {
			same = same && c.prekeys[i] == p.ID
		}
		if same {
			return c.hdr, nil
		}
	}
	// Over links where the members hold them (keylinks.go).
	first, self := c.ref != key.Ref(), g.n.self.Sign
	rs := g.links.recipients(self, pks, key.Ref(), first, g.ownKeyRegistered, now)
	hdr, started, err := crypto.SealKeyHeaderLinked(key, rs, now)
	if err != nil {
		return nil, fmt.Errorf("seal message: %w", err)
	}
	g.links.started(self, started, key.Ref(), first)
	ids := make([][prekey.IDSize]byte, len(pks))
	for i, p := range pks {
		ids[i] = p.ID
	}
	*c = sealedHeader{ref: key.Ref(), prekeys: ids, hdr: hdr}
	return hdr, nil
}

// ownKeyRegistered reports whether the group registered ref, a key of this
// node, in the current epoch.
func (g *group) ownKeyRegistered(ref crypto.KeyRef) bool {
	if ref.Epoch != g.st.Epoch {
		return false
	}
	_, ok := g.st.KeyRegistered(g.n.self.Sign, ref.ID)
	return ok
}

// prekeyOf returns member's current prekey as the log has it, if valid at
// now.
func (g *group) prekeyOf(member [32]byte, now time.Time) (*prekey.Prekey, error) {
	b := g.st.Prekey(member)
	if b == nil {
		return nil, fmt.Errorf("it has published no prekey yet")
	}
	p, err := g.n.keys.prekeyFor(member, b)
	if err != nil {
		return nil, fmt.Errorf("its prekey does not decode: %v", err)
	}
	if err := p.ValidAt(now); err != nil {
		return nil, fmt.Errorf("its prekey is not valid now: %v", err)
	}
	return p, nil
}

// prekeyGapCache is what prekeyGaps last found, and of which log.
type prekeyGapCache struct {
	epoch, prekeys uint64 // the epoch and prekeysApplied it was found at
	until          time.Time
	names          []string
}

// prekeyGaps returns membersWithoutPrekey, found again only when the
// members or a prekey changed, or when one of the members' prekeys starts
// or stops being valid: the group's view is published at every applied
// batch, and checking each member's prekey there took 9% of a 100-member
// group's CPU (and, found again every retry interval, still 4%). Empty:
// every member has a valid prekey, and new key headers are sealed to
// prekeys.
func (g *group) prekeyGaps() []string {
	now := time.Now()
	c := &g.gaps
	if c.until.IsZero() || c.epoch != g.st.Epoch || c.prekeys != g.prekeysApplied || !now.Before(c.until) {
		names, until := g.membersWithoutPrekey(now)
		*c = prekeyGapCache{epoch: g.st.Epoch, prekeys: g.prekeysApplied, until: until, names: names}
	}
	return c.names
}

// membersWithoutPrekey returns the names (or ids) of the members with no
// valid prekey at now, sorted, and the first time after now at which one
// of the members' prekeys starts or stops being valid (at most a retry
// interval away if a prekey does not decode); keepers read nothing and
// need none.
func (g *group) membersWithoutPrekey(now time.Time) ([]string, time.Time) {
	var out []string
	until := now.Add(24 * time.Hour)
	for _, r := range g.st.Recipients() {
		valid := false
		if b := g.st.Prekey(r.Sign); b != nil {
			if p, err := g.n.keys.prekeyFor(r.Sign, b); err == nil {
				valid = p.ValidAt(now) == nil
				if p.NotBefore.After(now) && p.NotBefore.Before(until) {
					until = p.NotBefore
				}
				if p.Expires.After(now) && p.Expires.Before(until) {
					until = p.Expires
				}
			} else if retry := now.Add(g.n.cfg.RetryInterval); retry.Before(until) {
				until = retry
			}
		}
		if !valid {
			name := r.String()
			if m := g.st.Members[r.Sign]; m != nil && m.Name != "" {
				name = g.namesakes().label(r.String(), m.Name)
			}
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, until
}

// maybePublishPrekey commits this node's current prekey when the log does
// not have it yet: after it joined, after a rotation, after a rekey. A
// keeper reads nothing and publishes none.
func (g *group) maybePublishPrekey() {
	me := g.st.Members[g.n.self.Sign]
	if me == nil || me.Keeper || g.n.cfg.Keeper || g.left || g.leader == raft.None || g.fork != nil {
		return
	}
	cur := g.n.keys.Current()
	if bytes.Equal(me.Prekey, cur) {
		return
	}
	// Each copy proposed is committed, so a copy the log has already is a
	// junk entry in every member's log, rejected as not newer. So the same
	// key is proposed again in the same term only after prekeyRetry (a
	// copy dropped on the way to a host that stays is rare; a new host
	// gets it at once). And behind the host's commit index, the part of
	// the log this node has not applied yet may name cur already (a member
	// back after a long absence, its publication still ahead), so a node
	// behind waits as long.
	wait := 4 * g.n.cfg.RetryInterval
	again := bytes.Equal(cur, g.prekeyTried) && g.term == g.prekeyTerm
	// No append from this host yet counts as behind: a restarted member
	// learns the host from a heartbeat, before any append names its commit.
	behind := g.leader != g.raftID && (g.leaderCommitBy != g.leader || g.st.Applied < g.leaderCommit)
	if again || behind {
		wait = max(wait, prekeyRetry)
	}
	if time.Since(g.lastPrekey) < wait {
		return
	}
	g.lastPrekey = time.Now() // a failed proposal waits too
	if err := g.proposePrekeyFn(cur)(); err != nil {
		g.n.log.Debug().Err(err).Msg("prekey proposal")
	}
}

// prekeyRetry is how long a node waits before it proposes the same prekey
// again in the same term, or any prekey while it is behind the host's
// commit index (maybePublishPrekey). It is a bound, not only a wait: a host
// that names a commit index it never sends delays a member's new prekey by
// this much at most. A prekey is valid for twice PrekeyRotate, so nothing
// hurries it.
const prekeyRetry = 15 * time.Second

// proposePrekeyFn is a propose function for commitUntil: this node's prekey
// entry publishing the signed prekey signed. It notes what it proposed and
// when, for maybePublishPrekey, whoever calls it (a rekey proposes through
// commitUntil, and upkeep would otherwise propose the same key again).
func (g *group) proposePrekeyFn(signed []byte) func() error {
	return func() error {
		if g.fork != nil {
			return g.errHalted("propose")
		}
		frame, err := g.n.sign(&crypto.Envelope{Type: crypto.TypePrekey, Group: g.id, Payload: signed})
		if err != nil {
			return err
		}
		if err := g.proposeFrame(frame); err != nil {
			return err
		}
		g.lastPrekey, g.prekeyTried, g.prekeyTerm = time.Now(), signed, g.term
		return nil
	}
}

// pruneKeys drops from the ring and the history the sender keys the key
// store deleted since the last look (keys.go): messages under them are no
// longer readable here.
func (g *group) pruneKeys() {
	gen := g.n.keys.generation()
	if gen == g.keysGen {
		return
	}
	g.keysGen = gen
	floors := g.n.keys.floorsOf(g.id)
	g.applyFloors(floors)
	if n := g.hist.forget(func(ref crypto.KeyRef, c1 uint64) bool {
		return !g.n.keys.holds(g.id, ref) || pastFloor(c1, floors[ref])
	}); n > 0 {
		g.n.log.Info().Str("group", g.id.String()).Int("messages", n).Msg("messages whose keys were deleted are no longer shown")
	}
	for ref := range g.hist.keys {
		if !g.n.keys.holds(g.id, ref) {
			delete(g.hist.keys, ref)
			g.keys.Drop(ref)
		}
	}
	g.forgetDeleted()                // boardstore.go
	g.forgetDeletedTentative(floors) // tentative_take.go
}

// maybeRecoverKeys asks for new sender keys when this node lost the secret
// of a prekey the group seals to (noteKeysLost): its key store was lost, or
// the node was restored from a backup (which holds no keys). It cannot open
// the key headers sealed to that prekey, so it waits until its new prekey is
// committed (maybePublishPrekey), then commits a rekey entry: every member
// seals its next messages under a new key, to the new prekey, and this
// node reads the group again. What was sealed before stays unreadable
// here, as forward secrecy means.
func (g *group) maybeRecoverKeys() {
	me := g.st.Members[g.n.self.Sign]
	if me == nil || me.Keeper || g.n.cfg.Keeper || g.left || g.leader == raft.None || g.fork != nil {
		return
	}
	if g.lostEpoch == 0 {
		g.checkOwnPrekey(me.Prekey)
		if g.lostEpoch == 0 {
			return
		}
	}
	if g.st.Epoch != g.lostEpoch {
		// A new epoch: its keys are sealed to the prekey the log has now.
		g.lostEpoch = 0
		g.keysAlert = &api.KeysAlert{RenewedAt: g.st.Epoch, Message: fmt.Sprintf(
			"this node lost its keys for the group (restored from a backup, or its key store was lost) and asked for new ones: "+
				"it reads messages from log index %d on; older ones sealed to the lost keys stay unreadable here", g.st.Epoch)}
		return
	}
	if lost, err := g.n.keys.renewIfLost(time.Now()); lost {
		// Asking now would have the new keys sealed to a prekey whose
		// secret is gone, and the group takes one rekey an hour from a
		// member: ask once the new prekey is committed.
		if err != nil {
			g.n.log.Error().Err(err).Msg("prekey rotation")
		}
		return
	}
	if !bytes.Equal(me.Prekey, g.n.keys.Current()) || time.Since(g.lastRekey) < 4*g.n.cfg.RetryInterval {
		return
	}
	if next := g.st.NextRekey(g.n.self.Sign); next != 0 && time.Now().UnixNano() < next {
		// This node rekeyed less than state.RekeyInterval ago (a
		// rekey, then a restore): the group would reject another
		// until then.
		return
	}
	g.lastRekey = time.Now()
	if err := g.proposeEntry(crypto.TypeRekey, map[string]any{}); err != nil {
		g.n.log.Debug().Err(err).Msg("rekey proposal")
	}
}

// checkOwnPrekey notes lost keys (noteKeysLost) when signed, a prekey the
// log names as this node's, is still valid but this node does not hold its
// secret. An expired prekey's secret is deleted on purpose (keys.go).
func (g *group) checkOwnPrekey(signed []byte) {
	if len(signed) == 0 {
		return
	}
	p, err := g.n.keys.prekeyFor(g.n.self.Sign, signed)
	if err != nil {
		return
	}
	g.noteOwnPrekey(p)
	if p.ValidAt(time.Now()) != nil || g.n.keys.Secret(p.ID) != nil {
		return
	}
	g.noteKeysLost(fmt.Sprintf("the log names prekey %x as this node's, and its secret is not in the key store", p.ID[:4]))
}

// noteKeysLost records that this node cannot read what the group seals to
// it in the current epoch, for why, so that maybeRecoverKeys asks for new
// keys. It is noted once per epoch.
func (g *group) noteKeysLost(why string) {
	if g.lostEpoch == g.st.Epoch {
		return
	}
	g.lostEpoch = g.st.Epoch
	g.keysAlert = &api.KeysAlert{Message: "this node lost its keys for the group (restored from a backup, or its key store was lost): " +
		"it is asking the others for new ones; what was sealed to the lost keys stays unreadable here, and so does what is sealed to them until the new ones are in"}
	g.n.log.Warn().Str("group", g.id.String()).Str("why", why).
		Msg("this node cannot read what the group seals to it; asking for new keys once its new prekey is committed")
}

// noteOwnPrekey records p, a prekey the log names as this node's, until it
// expires: a key header sealed to it is one this node was really given
// (namedOwnPrekey).
func (g *group) noteOwnPrekey(p *prekey.Prekey) {
	now := time.Now()
	for id, exp := range g.ownPrekeys {
		if !now.Before(exp) {
			delete(g.ownPrekeys, id)
		}
	}
	if now.Before(p.Expires) {
		g.ownPrekeys[p.ID] = p.Expires
	}
}

// namedOwnPrekey reports whether the stanza of this node in sealed's key
// header names a prekey the log named as this node's and that is still
// valid: only then does a stanza it cannot open mean that it lost the
// secret. A stanza's owner and prekey id are the author's claim, unchecked
// by the state machine, so a member can name any id in another's stanza;
// without this check it makes that member believe its key store was lost
// (a false alarm to its user) and commit a rekey, every epoch, for the
// price of one message.
func (g *group) namedOwnPrekey(sealed []byte) bool {
	if b := g.st.Prekey(g.n.self.Sign); b != nil {
		if p, err := g.n.keys.prekeyFor(g.n.self.Sign, b); err == nil {
			g.noteOwnPrekey(p) // the current one, even if not seen applied
		}
	}
	info, err := crypto.ReadSealed(sealed)
	if err != nil {
		return false
	}
	for i, r := range info.Recipients {
		if r == g.n.self.Sign && i < len(info.PrekeyIDs) {
			exp, ok := g.ownPrekeys[info.PrekeyIDs[i]]
			return ok && time.Now().Before(exp)
		}
	}
	return false
}
