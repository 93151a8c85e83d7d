// Package identity holds a DeMeS identity: an ed25519 signing key, which
// names a person in every signed envelope, and an X25519 key, which others
// encrypt chat payloads to.
//
// # Text forms
//
// A [PublicID] has one copy-pasteable form, "demes1..." (bech32 of the two
// 32-byte public keys, with a checksum that catches typos). The encryption half
// is also a standard age recipient ("age1..."), so any age tool can encrypt to
// a DeMeS member. An [Identity] serialises to "DEMES-SECRET-KEY-1..." for the
// key file (see package keys).
//
// # Comparing out of band
//
// [PublicID.Fingerprint] is a short form for display; [SafetyNumber] is what
// two people read to each other to check they hold each other's real keys. It
// is the same on both sides whatever the order of the arguments.
package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"filippo.io/age"
	"github.com/oasisprotocol/curve25519-voi/curve"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"golang.org/x/crypto/curve25519"

	"github.com/demes/demes/internal/bech32"
)

// PublicHRP and SecretHRP are the bech32 human-readable parts of the text forms.
const (
	PublicHRP = "demes"
	SecretHRP = "DEMES-SECRET-KEY-"
)

// PrivateSize is the length of [Identity.Private]: the ed25519 seed followed by
// the X25519 scalar.
const PrivateSize = 64

// PublicID is the public half of an identity. It is a comparable value, so it
// can key a map.
type PublicID struct {
	// Sign is the ed25519 public key that verifies this member's signatures.
	Sign [32]byte
	// Box is the X25519 public key that chat payloads are encrypted to.
	Box [32]byte
}

// Identity is a person's private keys. The zero value is not usable; create one
// with [Generate], [FromSeed], [FromPrivate] or [ParseSecretKey].
type Identity struct {
	signKey ed25519.PrivateKey
	scalar  [32]byte
	age     *age.X25519Identity
	pub     PublicID
}

// Generate creates a new random identity.
func Generate() (*Identity, error) {
	var b [PrivateSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return FromPrivate(b[:])
}

// FromSeed derives an identity deterministically from a 32-byte seed with
// HKDF-SHA256. It exists for test vectors and reproducible simulations; real
// identities come from [Generate].
func FromSeed(seed []byte) (*Identity, error) {
	if len(seed) != 32 {
		return nil, fmt.Errorf("identity seed is %d bytes, want 32", len(seed))
	}
	ed, err := hkdf.Key(sha256.New, seed, nil, "demes ed25519", 32)
	if err != nil {
		return nil, err
	}
	x, err := hkdf.Key(sha256.New, seed, nil, "demes x25519", 32)
	if err != nil {
		return nil, err
	}
	return FromPrivate(append(ed, x...))
}

// FromPrivate rebuilds an identity from the 64 bytes of [Identity.Private].
func FromPrivate(b []byte) (*Identity, error) {
	if len(b) != PrivateSize {
		return nil, fmt.Errorf("private key is %d bytes, want %d", len(b), PrivateSize)
	}
	id := &Identity{signKey: ed25519.NewKeyFromSeed(b[:32])}
	copy(id.scalar[:], b[32:])
	// age accepts any 32-byte scalar (X25519 clamps it); going through its
	// text form keeps us on its public API.
	s, err := bech32.Encode("AGE-SECRET-KEY-", id.scalar[:])
	if err != nil {
		return nil, err
	}
	id.age, err = age.ParseX25519Identity(s)
	if err != nil {
		return nil, fmt.Errorf("x25519 key: %w", err)
	}
	boxPub, err := curve25519.X25519(id.scalar[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("x25519 key: %w", err)
	}
	copy(id.pub.Sign[:], id.signKey.Public().(ed25519.PublicKey))
	copy(id.pub.Box[:], boxPub)
	return id, nil
}

// ParseSecretKey parses the "DEMES-SECRET-KEY-1..." text form.
func ParseSecretKey(s string) (*Identity, error) {
	hrp, data, err := bech32.Decode(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("malformed secret key: %w", err)
	}
	if hrp != SecretHRP {
		return nil, fmt.Errorf("malformed secret key: prefix %q, want %q", hrp, SecretHRP+"1")
	}
	return FromPrivate(data)
}

// SecretKey returns the "DEMES-SECRET-KEY-1..." text form. Treat it like the
// key itself: it must never be logged.
func (id *Identity) SecretKey() string {
	s, err := bech32.Encode(SecretHRP, id.Private())
	if err != nil {
		panic(err) // cannot happen: the HRP is a valid constant
	}
	return s
}

// Private returns the 64 private bytes: ed25519 seed, then X25519 scalar.
func (id *Identity) Private() []byte {
	return append(bytes.Clone(id.signKey.Seed()), id.scalar[:]...)
}

// Public returns the identity's public half.
func (id *Identity) Public() PublicID { return id.pub }

// Sign signs msg with the ed25519 key. Ed25519 signatures are deterministic
// (RFC 8032), so this is byte for byte the signature of crypto/ed25519.Sign;
// curve25519-voi computes it in constant time, about twice as fast (a node
// signs every message record, log entry and transport request).
func (id *Identity) Sign(msg []byte) []byte {
	return voied25519.Sign(voied25519.PrivateKey(id.signKey), msg)
}

// AgeIdentity returns the X25519 half as an age identity, to decrypt with.
func (id *Identity) AgeIdentity() *age.X25519Identity { return id.age }

// Errors returned by [ParsePublicID]; each parse error wraps one of them.
var (
	ErrPrefix   = errors.New("not a DeMeS public id: it must start with \"demes1\"")
	ErrChecksum = errors.New("checksum mismatch: the id was mistyped or cut")
	ErrLength   = errors.New("wrong length")
	// ErrMistyped: a character no public id has, or mixed case.
	ErrMistyped = errors.New("the id was mistyped")
	ErrKey      = errors.New("invalid key")
	// ErrWeakKey: a key that is not on its curve, of small order, or not
	// canonically encoded. A small-order ed25519 key verifies forged
	// signatures; a small-order X25519 key makes every key agreement with
	// it all zeros.
	ErrWeakKey = errors.New("weak key refused")
)

// PublicIDLen is the length of a public id's text form: "demes1", its 64
// bytes of keys in bech32 (103 characters) and a checksum of 6.
const PublicIDLen = len(PublicHRP) + 1 + (64*8+4)/5 + 6

// ParsePublicID parses the "demes1..." text form. The error says which part is
// wrong, in words for a person: prefix, length, checksum (a typo) or a
// character no id has, or the keys themselves.
func ParsePublicID(s string) (PublicID, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(strings.ToLower(s), PublicHRP+"1") {
		return PublicID{}, fmt.Errorf("parse public id: %w", ErrPrefix)
	}
	if len(s) != PublicIDLen {
		return PublicID{}, fmt.Errorf("parse public id: %w: it is %d characters long; a public id is %d", ErrLength, len(s), PublicIDLen)
	}
	hrp, data, err := bech32.Decode(s)
	hrp = strings.ToLower(hrp)
	if err != nil {
		if errors.Is(err, bech32.ErrChecksum) {
			return PublicID{}, fmt.Errorf("parse public id: %w", ErrChecksum)
		}
		return PublicID{}, fmt.Errorf("parse public id: %w: %s", ErrMistyped, notBech32(s))
	}
	if hrp != PublicHRP {
		return PublicID{}, fmt.Errorf("parse public id: %w", ErrPrefix)
	}
	p, err := PublicIDFromBytes(data)
	if err != nil {
		return PublicID{}, fmt.Errorf("parse public id: %w", err)
	}
	return p, nil
}

// notBech32 says in words why s, of the right length, is no bech32 string:
// the decoder's own words name its parts ("separator", "position").
func notBech32(s string) string {
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "it mixes upper- and lower-case letters"
	}
	for _, r := range strings.ToLower(s[len(PublicHRP)+1:]) {
		if !strings.ContainsRune(bech32Charset, r) {
			return fmt.Sprintf("it holds %q, which no public id has", string(r))
		}
	}
	return "it is not written as a public id is"
}

// bech32Charset are the characters of a bech32 string's data part.
const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// PublicIDFromBytes parses the 64-byte binary form (ed25519 key, X25519 key).
func PublicIDFromBytes(b []byte) (PublicID, error) {
	var p PublicID
	if len(b) != 64 {
		return p, fmt.Errorf("%w: %d bytes of keys, want 64", ErrLength, len(b))
	}
	copy(p.Sign[:], b[:32])
	copy(p.Box[:], b[32:])
	if p.Sign == ([32]byte{}) || p.Box == ([32]byte{}) {
		return PublicID{}, fmt.Errorf("%w: all-zero key", ErrKey)
	}
	if err := CheckSigningKey(p.Sign); err != nil {
		return PublicID{}, fmt.Errorf("signing key: %w", err)
	}
	if err := checkBoxKey(p.Box); err != nil {
		return PublicID{}, fmt.Errorf("encryption key: %w", err)
	}
	return p, nil
}

// CheckSigningKey refuses, with [ErrWeakKey] and the reason, an ed25519
// public key that does not decode to a point, is not the canonical encoding
// of its point, or is of small order.
//
// Every message record names its author's key, so a node checks the same
// few keys for each message it opens: keys found good are remembered, like
// those of checkBoxKey.
func CheckSigningKey(k [32]byte) error {
	if goodSignKeys.has(k) {
		return nil
	}
	var c curve.CompressedEdwardsY
	var pt curve.EdwardsPoint
	if _, err := c.SetBytes(k[:]); err != nil {
		return fmt.Errorf("%w: not on the curve", ErrWeakKey)
	}
	if _, err := pt.SetCompressedY(&c); err != nil {
		return fmt.Errorf("%w: not on the curve", ErrWeakKey)
	}
	var again curve.CompressedEdwardsY
	again.SetEdwardsPoint(&pt)
	if again != c {
		return fmt.Errorf("%w: not canonical", ErrWeakKey)
	}
	if pt.IsSmallOrder() {
		return fmt.Errorf("%w: small order", ErrWeakKey)
	}
	goodSignKeys.add(k)
	return nil
}

// weakScalar is any scalar: X25519 clamps it to a multiple of the cofactor,
// so that the shared secret with a small-order point is all zeros, which
// x/crypto's X25519 reports as an error.
var weakScalar = [32]byte{1: 1}

// checkBoxKey refuses an X25519 public key of small order or not canonically
// encoded (u at least 2^255 - 19, or the unused top bit set).
//
// The order check is a scalar multiplication, about 60 us: every message
// record names its author's key, so a transcript verifier checked the same
// few keys a hundred thousand times. Keys found good are remembered.
func checkBoxKey(k [32]byte) error {
	if goodBoxKeys.has(k) {
		return nil
	}
	if _, err := curve25519.X25519(weakScalar[:], k[:]); err != nil {
		return fmt.Errorf("%w: small order", ErrWeakKey)
	}
	if k[31]&0x80 != 0 || !belowP(k) {
		return fmt.Errorf("%w: not canonical", ErrWeakKey)
	}
	goodBoxKeys.add(k)
	return nil
}

// goodBoxKeys remembers X25519 keys that passed checkBoxKey. It forgets
// them all when full, so that it stays small whatever keys it is shown.
var goodBoxKeys = keySet{max: 4096}

// goodSignKeys remembers ed25519 keys that passed CheckSigningKey, as
// goodBoxKeys does X25519 keys.
var goodSignKeys = keySet{max: 4096}

type keySet struct {
	mu   sync.RWMutex
	keys map[[32]byte]struct{}
	max  int
}

func (s *keySet) has(k [32]byte) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.keys[k]
	return ok
}

func (s *keySet) add(k [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil || len(s.keys) >= s.max {
		s.keys = make(map[[32]byte]struct{}, 64)
	}
	s.keys[k] = struct{}{}
}

// belowP reports whether k, little-endian, is below 2^255 - 19.
func belowP(k [32]byte) bool {
	// p = 0x7fff...ffed: k >= p only if its top 31 bytes are those of p
	// (0x7f, then 0xff) and its lowest byte at least 0xed.
	if k[31] != 0x7f {
		return k[31] < 0x7f
	}
	for i := 30; i >= 1; i-- {
		if k[i] != 0xff {
			return true
		}
	}
	return k[0] < 0xed
}

// String returns the "demes1..." form.
func (p PublicID) String() string {
	if p.IsZero() {
		return ""
	}
	s, err := bech32.Encode(PublicHRP, p.Bytes())
	if err != nil {
		panic(err)
	}
	return s
}

// Bytes returns the 64-byte binary form.
func (p PublicID) Bytes() []byte { return append(append([]byte{}, p.Sign[:]...), p.Box[:]...) }

// IsZero reports whether p is the zero value (no identity).
func (p PublicID) IsZero() bool { return p == PublicID{} }

// Compare orders ids by their binary form; it is the stable id order used
// wherever DeMeS needs a deterministic order of members.
func (p PublicID) Compare(q PublicID) int { return bytes.Compare(p.Bytes(), q.Bytes()) }

// AgeRecipient returns the standard "age1..." recipient string of p's X25519 key.
func (p PublicID) AgeRecipient() string {
	s, err := bech32.Encode("age", p.Box[:])
	if err != nil {
		panic(err)
	}
	return s
}

// Recipient returns p's X25519 key as an age recipient.
func (p PublicID) Recipient() (*age.X25519Recipient, error) {
	return age.ParseX25519Recipient(p.AgeRecipient())
}

// Fingerprint returns a short display form: the first 8 bytes of SHA-256 of
// the binary id, in hex groups of four ("1a2b 3c4d 5e6f 7a8b").
func (p PublicID) Fingerprint() string {
	h := sha256.Sum256(p.Bytes())
	x := hex.EncodeToString(h[:8])
	return x[0:4] + " " + x[4:8] + " " + x[8:12] + " " + x[12:16]
}

// MarshalText implements encoding.TextMarshaler with the "demes1..." form.
func (p PublicID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PublicID) UnmarshalText(b []byte) error {
	q, err := ParsePublicID(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// SafetyNumber returns the number two people compare out of band to check that
// each holds the other's real keys: 60 decimal digits in 12 groups of five,
// derived from SHA-256 over both ids in sorted order, so it is the same
// whichever side computes it.
func SafetyNumber(a, b PublicID) string {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte("DeMeS safety number v1"))
	h.Write(a.Bytes())
	h.Write(b.Bytes())
	sum := h.Sum(nil)
	// Each group of five digits comes from 5 bytes mod 100000 (bias ~1e-7).
	h2 := sha256.Sum256(sum)
	src := append(sum, h2[:]...) // 64 bytes, 12 groups x 5 bytes = 60
	groups := make([]string, 12)
	for i := range groups {
		var v [8]byte
		copy(v[3:], src[i*5:i*5+5])
		groups[i] = fmt.Sprintf("%05d", binary.BigEndian.Uint64(v[:])%100000)
	}
	return strings.Join(groups, " ")
}
