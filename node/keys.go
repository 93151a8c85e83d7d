package node

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/keystore"
)

// Forward secrecy (issue 19; docs/PROTOCOL.md, "Forward secrecy").
//
// A node keeps its secret keys in its key store (package keystore, the file
// keys.db beside store.db), sealed to its identity, and nowhere else: the
// store.db log holds only ciphertext and key headers. Three kinds of names:
//
//   - "prekey/<id>": the secret of one of its prekeys (seed and signed
//     prekey), deleted PrekeyGrace after the prekey expired. The node
//     publishes its current prekey in each group's log and rotates it every
//     PrekeyRotate; the others seal their sender keys to it. Once a secret
//     is deleted, nobody opens the key headers sealed to its prekey again,
//     with or without the identity file.
//   - "sender/<group>/<sender>/<epoch>/<key id>": a sender key this node
//     opened or made, kept KeyRetention after it may last have been used
//     (RotateAfter after it was learnt): what opens the group's older
//     messages again, for history pages, search and transcripts. Within
//     that, the key is advanced past the messages seen more than
//     KeyRetention ago (keyfloor.go): they are deleted one by one, not
//     only with the whole key.
//   - "board/<group>": the key of the group's stored board (boardstore.go),
//     replaced, and the old one erased, at each write of the board.
//   - "gone/<group>/<sender>/<epoch>/<key id>": a deleted sender key's name
//     (no secret), so that a restart never opens its header again from the
//     log: a key header sealed to identity keys (sealed message version 2,
//     the fallback for a member without a valid prekey) would still open.
//
// So a restart fills each group's key ring from the key store, not by
// replaying the log; what the policy deleted stays deleted.

// DefaultKeyRetention is Config.KeyRetention's default: 30 days.
const DefaultKeyRetention = 30 * 24 * time.Hour

// keyStoreFile is the key store's file name in the node's directory.
const keyStoreFile = "keys.db"

// secretStore is what the node needs of its key store (keystore.Store).
type secretStore interface {
	Put(name string, secret []byte, deleteAfter time.Time) error
	PutMany(items []keystore.Item) error
	Get(name string) ([]byte, bool)
	List(prefix string) []keystore.Entry
	Delete(name string) error
	Expire(now time.Time) (int, error)
	Close() error
}

// keyBook is the node's secret keys: its prekeys and the sender keys it
// keeps. It is safe for concurrent use; it implements prekey.Secrets for the
// groups' key rings.
type keyBook struct {
	n *Node

	mu    sync.Mutex
	store secretStore
	// renewMu makes renewIfLost rotate once when several groups find the
	// current prekey's secret gone at the same time.
	renewMu sync.Mutex
	current *prekey.Prekey // the prekey this node publishes
	secrets *prekey.SecretSet
	kept    map[string]bool // names of the sender keys in the store
	// gen counts the deletions of sender keys, so that each group drops
	// what was deleted from its rings (group.pruneKeys).
	gen      uint64
	expireAt time.Time
	// byOwner is each member's prekey as last looked up (prekeyFor).
	byOwner map[[32]byte]*prekey.Prekey
	// marks and floors: what the node saw of each sender key's counters,
	// and the floors it advanced keys to (keyfloor.go).
	marks  map[keyName][]keyMark
	floors map[keyName]uint64
	// linkRenewed is when a lost key link last made the node start a
	// new prekey (renewForLostLink).
	linkRenewed time.Time
}

// openKeyBook opens (creating it) the node's key store and loads its prekey
// secrets, rotating the prekey if it is due.
func openKeyBook(n *Node) (*keyBook, error) {
	st, err := keystore.Open(filepath.Join(n.cfg.Dir, keyStoreFile), n.id)
	if err != nil {
		return nil, fmt.Errorf("open the key store: %w", err)
	}
	// Nothing expires in the node's first minute (expire).
	b := &keyBook{n: n, store: st, secrets: prekey.NewSecretSet(), kept: map[string]bool{},
		byOwner: map[[32]byte]*prekey.Prekey{}, expireAt: time.Now().Add(time.Minute),
		marks: map[keyName][]keyMark{}, floors: map[keyName]uint64{}}
	for _, e := range st.List("prekey/") {
		raw, ok := st.Get(e.Name)
		if !ok || len(raw) <= prekey.SecretSize {
			continue
		}
		// Decode keeps the bytes it is given; only the seed is wiped.
		p, err := prekey.Decode(bytes.Clone(raw[prekey.SecretSize:]))
		if err != nil {
			n.log.Error().Err(err).Str("name", e.Name).Msg("key store: a prekey that does not decode; skipped")
			continue
		}
		s, err := prekey.RestoreSecret(p, [prekey.SecretSize]byte(raw[:prekey.SecretSize]))
		clear(raw[:prekey.SecretSize])
		if err != nil {
			n.log.Error().Err(err).Str("name", e.Name).Msg("key store: a prekey secret that does not match; skipped")
			continue
		}
		b.secrets.Add(s)
		if p.Owner == n.self.Sign && (b.current == nil || p.NotBefore.After(b.current.NotBefore)) {
			b.current = p
		}
	}
	b.loadLinks()
	for _, e := range st.List("sender/") {
		b.kept[e.Name] = true
		raw, ok := st.Get(e.Name)
		if !ok {
			continue
		}
		if k, err := crypto.UnmarshalSenderKey(raw); err == nil {
			if k.Floor() > 0 {
				b.floors[keyName{k.Group, k.Ref()}] = k.Floor()
			}
			clear(k.Key[:])
		}
		clear(raw)
	}
	if err := b.rotateIfDue(time.Now()); err != nil {
		st.Close()
		return nil, err
	}
	return b, nil
}

// Secret implements prekey.Secrets.
func (b *keyBook) Secret(id [prekey.IDSize]byte) *prekey.Secret {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.secrets.Secret(id)
}

// Link implements prekey.Links: the root of a link to one of this node's
// prekeys, if kept.
func (b *keyBook) Link(id [prekey.IDSize]byte, link [prekey.LinkIDSize]byte) ([prekey.LinkRootSize]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.secrets.Link(id, link)
}

// KeepLink implements prekey.Links: it keeps the root of a link to prekey id
// in the key store, to be deleted with the prekey's secret, and in memory.
// A root the store cannot keep stays in memory, as a sender key does (keep):
// a restart will not read the sender's next keys over that link.
func (b *keyBook) KeepLink(id [prekey.IDSize]byte, root [prekey.LinkRootSize]byte) {
	link := prekey.LinkID(&root)
	b.mu.Lock()
	s := b.secrets.Secret(id)
	_, held := b.secrets.Link(id, link)
	b.mu.Unlock()
	if s == nil || held {
		return
	}
	// Deleted exactly when the prekey's secret is: at its record's
	// deletion time, set when the prekey was made (PrekeyGrace may have
	// changed since, with a restart). Without a record (the store lost
	// it), the root stays in memory only, as the secret does.
	var until time.Time
	for _, e := range b.store.List("prekey/" + hex.EncodeToString(id[:])) {
		until = e.DeleteAfter
	}
	name := "link/" + hex.EncodeToString(id[:]) + "/" + hex.EncodeToString(link[:])
	if until.IsZero() {
		b.n.log.Error().Msg("cannot keep a key link in the key store: its prekey's secret is not there")
	} else if err := b.store.Put(name, root[:], until); err != nil {
		b.n.log.Error().Err(err).Msg("cannot keep a key link in the key store")
	}
	b.mu.Lock()
	b.secrets.KeepLink(id, root)
	b.mu.Unlock()
}

// loadLinks puts the link roots of the key store in the set of secrets,
// for the prekeys whose secret it holds.
func (b *keyBook) loadLinks() {
	for _, e := range b.store.List("link/") {
		prekeyHex, _, _ := strings.Cut(strings.TrimPrefix(e.Name, "link/"), "/")
		id, err := hex.DecodeString(prekeyHex)
		raw, ok := b.store.Get(e.Name)
		if err != nil || len(id) != prekey.IDSize || !ok || len(raw) != prekey.LinkRootSize {
			b.n.log.Error().Str("name", e.Name).Msg("key store: a key link that does not decode; skipped")
			clear(raw)
			continue
		}
		if b.secrets.Secret([prekey.IDSize]byte(id)) != nil {
			b.secrets.KeepLink([prekey.IDSize]byte(id), [prekey.LinkRootSize]byte(raw))
		}
		clear(raw)
	}
}

// Current returns the signed prekey this node publishes.
func (b *keyBook) Current() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.current.Bytes()
}

// rotateIfDue makes a new prekey when there is none or the current one is
// PrekeyRotate old.
func (b *keyBook) rotateIfDue(now time.Time) error {
	b.mu.Lock()
	due := b.current == nil || now.Sub(b.current.NotBefore) >= b.n.cfg.PrekeyRotate
	b.mu.Unlock()
	if !due {
		return nil
	}
	return b.Rotate(now)
}

// renewIfLost makes a new prekey when the key store no longer holds the
// secret of the current one (an expiry pass deleted it before rotating, a
// clock jumped, the store lost it): keys sealed to it would be lost too. It
// reports whether the current one was lost.
func (b *keyBook) renewIfLost(now time.Time) (bool, error) {
	b.renewMu.Lock()
	defer b.renewMu.Unlock()
	b.mu.Lock()
	lost := b.current != nil && b.secrets.Secret(b.current.ID) == nil
	b.mu.Unlock()
	if !lost {
		return false, nil
	}
	return true, b.Rotate(now)
}

// Rotate makes, keeps and starts publishing a new prekey, valid from a
// minute before now (other members' clocks may be a little behind) for
// twice PrekeyRotate, so that senders who have not seen the next one yet may
// still use it for a while.
func (b *keyBook) Rotate(now time.Time) error {
	from := now.Add(-time.Minute)
	b.mu.Lock()
	if b.current != nil && !from.After(b.current.NotBefore) {
		// The log takes only a later one (a clock set back, two rekeys
		// in a row).
		from = b.current.NotBefore.Add(time.Millisecond)
	}
	b.mu.Unlock()
	p, s, err := prekey.Generate(b.n.id, from, 2*b.n.cfg.PrekeyRotate)
	if err != nil {
		return fmt.Errorf("make a prekey: %w", err)
	}
	seed := s.Seed()
	raw := append(seed[:], p.Bytes()...)
	clear(seed[:])
	err = b.store.Put("prekey/"+hex.EncodeToString(p.ID[:]), raw, p.Expires.Add(b.n.cfg.PrekeyGrace))
	clear(raw)
	if err != nil {
		s.Destroy()
		return fmt.Errorf("keep a prekey: %w", err)
	}
	b.mu.Lock()
	b.secrets.Add(s)
	b.current = p
	b.mu.Unlock()
	b.n.log.Info().Str("prekey", hex.EncodeToString(p.ID[:4])).Time("expires", p.Expires).Msg("new prekey")
	return nil
}

// senderName is the key store's name of a sender key of group gid.
func senderName(kind string, gid crypto.GroupID, ref crypto.KeyRef) string {
	return kind + "/" + gid.String() + "/" + hex.EncodeToString(ref.Sender[:]) + "/" +
		strconv.FormatUint(ref.Epoch, 10) + "/" + hex.EncodeToString(ref.ID[:])
}

// keep stores k, a sender key of group gid this node learnt or made, unless
// it is stored already. The policy keeps it KeyRetention after the last time
// its owner may seal under it (RotateAfter after now); a negative retention
// keeps it for good.
func (b *keyBook) keep(gid crypto.GroupID, k *crypto.SenderKey) {
	name := senderName("sender", gid, k.Ref())
	b.mu.Lock()
	done := b.kept[name]
	b.mu.Unlock()
	if done {
		return
	}
	var until time.Time
	if r := b.n.cfg.KeyRetention; r >= 0 {
		until = time.Now().Add(b.n.cfg.RotateAfter + r)
	}
	raw, _ := k.MarshalBinary()
	err := b.store.Put(name, raw, until)
	clear(raw)
	if err != nil {
		// The key stays in memory; a restart will not read its messages
		// again. Worth a line in the log, not a stop.
		b.n.log.Error().Err(err).Str("group", gid.String()).Msg("cannot keep a sender key in the key store")
		return
	}
	b.mu.Lock()
	b.kept[name] = true
	b.mu.Unlock()
}

// keptKeys returns the sender keys of group gid in the key store.
func (b *keyBook) keptKeys(gid crypto.GroupID) []*crypto.SenderKey {
	var out []*crypto.SenderKey
	for _, e := range b.store.List("sender/" + gid.String() + "/") {
		raw, ok := b.store.Get(e.Name)
		if !ok {
			continue
		}
		k, err := crypto.UnmarshalSenderKey(raw)
		clear(raw)
		if err != nil || k.Group != gid {
			b.n.log.Error().Str("name", e.Name).Msg("key store: a sender key that does not decode; skipped")
			continue
		}
		out = append(out, k)
	}
	return out
}

// holds reports whether the store still keeps the sender key ref of gid.
func (b *keyBook) holds(gid crypto.GroupID, ref crypto.KeyRef) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.kept[senderName("sender", gid, ref)]
}

// deleted reports whether the policy deleted the sender key ref of gid: its
// header must not be opened again.
func (b *keyBook) deleted(gid crypto.GroupID, ref crypto.KeyRef) bool {
	_, ok := b.store.Get(senderName("gone", gid, ref))
	return ok
}

// expire deletes, as of now, the prekey secrets and sender keys the policy
// no longer keeps, leaves a tombstone for each sender key, and rotates the
// prekey if it is due. It runs at most once a minute (any group's upkeep
// calls it), and not in the node's first minute, so that a node back from a
// long absence first catches up with what its old secrets still open.
func (b *keyBook) expire(now time.Time) {
	b.mu.Lock()
	if now.Before(b.expireAt) {
		b.mu.Unlock()
		return
	}
	b.expireAt = now.Add(time.Minute)
	b.mu.Unlock()
	b.expireNow(now)
	if err := b.rotateIfDue(now); err != nil {
		b.n.log.Error().Err(err).Msg("prekey rotation")
	}
}

// expireNow deletes what the policy no longer keeps at now.
func (b *keyBook) expireNow(now time.Time) {
	var gone []string
	var queued map[string]bool
	for _, e := range b.store.List("sender/") {
		if !e.DeleteAfter.IsZero() && !e.DeleteAfter.After(now) {
			if queued == nil {
				queued = b.queuedKeys()
			}
			if queued[e.Name] && b.keepLonger(e.Name, now) {
				continue
			}
			gone = append(gone, e.Name)
		}
	}
	for _, name := range gone {
		if err := b.store.Put("gone/"+strings.TrimPrefix(name, "sender/"), []byte{0}, time.Time{}); err != nil {
			b.n.log.Error().Err(err).Msg("key store: cannot record a deleted key; it is kept until the next try")
			return
		}
	}
	n, err := b.store.Expire(now)
	if err != nil {
		b.n.log.Error().Err(err).Msg("key store: expiry")
		return
	}
	b.mu.Lock()
	for _, name := range gone {
		delete(b.kept, name)
	}
	for name := range b.floors {
		if !b.kept[senderName("sender", name.gid, name.ref)] {
			delete(b.floors, name)
		}
	}
	for _, id := range b.secrets.Expire(now, b.n.cfg.PrekeyGrace) {
		b.n.log.Info().Str("prekey", hex.EncodeToString(id[:4])).Msg("prekey secret deleted")
	}
	if len(gone) > 0 {
		b.gen++
	}
	b.mu.Unlock()
	if n > 0 {
		b.n.log.Info().Int("deleted", n).Msg("key store: keys past their retention deleted")
	}
	b.advanceFloors(now)
}

// queuedKeys returns the key store names of this node's sender keys that
// the messages in its stored outboxes are sealed under. The outbox holds
// only the sealed frame, opened again at a start with that key: deleted,
// an acknowledged message that has waited longer than the retention (a
// group that could not commit for weeks) would be lost at the next start.
func (b *keyBook) queuedKeys() map[string]bool {
	out := map[string]bool{}
	groups, err := b.n.store.Groups()
	if err != nil {
		b.n.log.Error().Err(err).Msg("key store: cannot list the groups whose queued messages need their keys")
		return out
	}
	self := b.n.self.Sign
	for k := range groups {
		var gid crypto.GroupID
		if len(k) != len(gid) {
			continue
		}
		copy(gid[:], k)
		frames, err := b.n.store.Outbox(gid[:])
		if err != nil {
			b.n.log.Error().Err(err).Str("group", gid.String()).Msg("key store: cannot read the queued messages that need their keys")
			continue
		}
		for _, frame := range frames {
			if _, _, info, err := readQueued(frame, self); err == nil {
				out[senderName("sender", gid, crypto.KeyRef{Sender: self, Epoch: info.Epoch, ID: info.KeyID})] = true
			}
		}
	}
	return out
}

// keepLonger keeps the sender key name, past its retention at now but
// needed by a queued message, as if it had just been learnt, and reports
// whether it did.
func (b *keyBook) keepLonger(name string, now time.Time) bool {
	raw, ok := b.store.Get(name)
	if !ok {
		return false
	}
	err := b.store.Put(name, raw, now.Add(b.n.cfg.RotateAfter+max(b.n.cfg.KeyRetention, 0)))
	clear(raw)
	if err != nil {
		b.n.log.Error().Err(err).Msg("key store: cannot keep longer a sender key a queued message needs")
		return false
	}
	return true
}

// generation returns the count of sender key deletions so far.
func (b *keyBook) generation() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// prekeyFor decodes signed, the prekey the log names as owner's, once:
// the decoded prekey is kept until owner's next, which a byte comparison
// tells from it.
func (b *keyBook) prekeyFor(owner [32]byte, signed []byte) (*prekey.Prekey, error) {
	b.mu.Lock()
	p := b.byOwner[owner]
	b.mu.Unlock()
	if p != nil && bytes.Equal(p.Bytes(), signed) {
		return p, nil
	}
	p, err := prekey.Decode(signed)
	if err != nil {
		return nil, err
	}
	if p.Owner == owner {
		b.mu.Lock()
		if len(b.byOwner) >= 4096 {
			clear(b.byOwner)
		}
		b.byOwner[owner] = p
		b.mu.Unlock()
	}
	return p, nil
}

func (b *keyBook) close() error { return b.store.Close() }
