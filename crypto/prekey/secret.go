package prekey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/sha3"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Secret is the private half of a prekey: what opens the key headers sealed
// to it. Whoever holds it reads every sender key sealed to its prekey, so a
// member keeps it only until the grace period after the prekey's expiry and
// then deletes it ([SecretSet.Expire]); from then on, the headers sealed to
// that prekey can be opened by nobody, even with the member's identity file.
type Secret struct {
	ID      [IDSize]byte
	Owner   [32]byte
	Expires time.Time

	seed [SecretSize]byte
	sk   hpke.PrivateKey
	x    *ecdh.PrivateKey // the X25519 half of sk, for linked stanzas
}

// newSecret is the secret of prekey p with seed and its expanded key sk.
func newSecret(p *Prekey, seed [SecretSize]byte, sk hpke.PrivateKey) *Secret {
	return &Secret{ID: p.ID, Owner: p.Owner, Expires: p.Expires, seed: seed, sk: sk, x: x25519Of(&seed)}
}

// x25519Of returns the X25519 private key that X-Wing expands from seed:
// SHAKE256(seed) gives the 64-byte ML-KEM-768 seed and then the 32-byte
// X25519 key (draft-ietf-hpke-pq; crypto/hpke's NewPrivateKey). Its public
// key is the last 32 bytes of the prekey's public key.
func x25519Of(seed *[SecretSize]byte) *ecdh.PrivateKey {
	h := sha3.NewSHAKE256()
	h.Write(seed[:])
	var b [mlkem.SeedSize + 32]byte
	h.Read(b[:])
	defer clear(b[:])
	k, err := ecdh.X25519().NewPrivateKey(b[mlkem.SeedSize:])
	if err != nil {
		panic(err) // any 32 bytes are an X25519 private key
	}
	return k
}

// Seed returns the 32 bytes the secret is expanded from, for the caller to
// store encrypted (with [RestoreSecret] to read it back). It is as secret as
// the Secret itself.
func (s *Secret) Seed() [SecretSize]byte { return s.seed }

// RestoreSecret rebuilds the secret of prekey p from its seed, and checks
// that the seed is p's (it derives p's public key), so that a damaged store
// is noticed when it is read rather than when a header fails to open.
func RestoreSecret(p *Prekey, seed [SecretSize]byte) (*Secret, error) {
	if p == nil {
		return nil, errors.New("restore prekey secret: nil prekey")
	}
	sk, err := kem.NewPrivateKey(seed[:])
	if err != nil {
		return nil, fmt.Errorf("restore prekey secret: %v", err)
	}
	if !bytes.Equal(sk.PublicKey().Bytes(), p.public) {
		return nil, fmt.Errorf("restore prekey secret: the seed is not the secret of prekey %x", p.ID[:4])
	}
	return newSecret(p, seed, sk), nil
}

// Destroy overwrites the seed and drops the private key. Go gives no
// guarantee that no other copy of it is left in memory (the expanded ML-KEM
// key is inside crypto/hpke, out of reach); what makes deletion real is that
// the seed is no longer in any store the member keeps.
func (s *Secret) Destroy() {
	clear(s.seed[:])
	s.sk, s.x = nil, nil
}

// Secrets looks up the secret of a prekey by id, or returns nil if it is
// unknown or deleted, and keeps the roots of the links to the prekeys.
// [*SecretSet] implements it.
type Secrets interface {
	Secret(id [IDSize]byte) *Secret
	Links
}

// SecretSet is the prekey secrets one member keeps, with the roots of the
// links to them. It is not safe for concurrent use.
type SecretSet struct {
	m     map[[IDSize]byte]*Secret
	links map[[IDSize]byte]map[[LinkIDSize]byte][LinkRootSize]byte
}

// NewSecretSet returns an empty set.
func NewSecretSet() *SecretSet {
	return &SecretSet{m: map[[IDSize]byte]*Secret{}, links: map[[IDSize]byte]map[[LinkIDSize]byte][LinkRootSize]byte{}}
}

// Link implements [Links]: the root of link id to the prekey, if the set
// holds it.
func (ss *SecretSet) Link(prekey [IDSize]byte, id [LinkIDSize]byte) ([LinkRootSize]byte, bool) {
	r, ok := ss.links[prekey][id]
	return r, ok
}

// KeepLink implements [Links]: it keeps root until the prekey's secret is
// deleted from the set ([SecretSet.Delete]), or for good if the set never
// held that secret (a thief's loot takes every root it finds; without the
// secret too, a root opens nothing).
func (ss *SecretSet) KeepLink(prekey [IDSize]byte, root [LinkRootSize]byte) {
	ls := ss.links[prekey]
	if ls == nil {
		ls = map[[LinkIDSize]byte][LinkRootSize]byte{}
		ss.links[prekey] = ls
	}
	ls[LinkID(&root)] = root
}

// LinkCount returns how many link roots the set keeps.
func (ss *SecretSet) LinkCount() int {
	n := 0
	for _, ls := range ss.links {
		n += len(ls)
	}
	return n
}

// Add keeps s in the set.
func (ss *SecretSet) Add(s *Secret) { ss.m[s.ID] = s }

// Secret returns the secret of the prekey id, or nil.
func (ss *SecretSet) Secret(id [IDSize]byte) *Secret { return ss.m[id] }

// IDs returns the ids of the secrets in the set, in ascending order.
func (ss *SecretSet) IDs() [][IDSize]byte {
	ids := slices.Collect(maps.Keys(ss.m))
	slices.SortFunc(ids, func(a, b [IDSize]byte) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// Delete destroys the secret of the prekey id and drops it from the set. It
// reports whether the set held it.
func (ss *SecretSet) Delete(id [IDSize]byte) bool {
	s := ss.m[id]
	if s == nil {
		return false
	}
	s.Destroy()
	delete(ss.m, id)
	for l, r := range ss.links[id] {
		clear(r[:])
		ss.links[id][l] = r
	}
	delete(ss.links, id)
	return true
}

// Expire deletes the secrets whose prekeys expired at least grace before
// now, and returns their ids in ascending order. The grace period lets a
// header sealed just before the expiry, and delivered late, still be
// opened.
func (ss *SecretSet) Expire(now time.Time, grace time.Duration) [][IDSize]byte {
	var gone [][IDSize]byte
	for _, id := range ss.IDs() {
		if !now.Before(ss.m[id].Expires.Add(grace)) {
			ss.Delete(id)
			gone = append(gone, id)
		}
	}
	return gone
}
