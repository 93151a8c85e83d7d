package prekey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/canon"
	"github.com/demes/demes/internal/sigrule"
)

// Version is the version of the prekey record and of the key header.
const Version = 1

// Sizes and limits of a prekey.
const (
	// IDSize is the length of a prekey id.
	IDSize = 16
	// PublicKeySize is the length of an MLKEM768-X25519 public key: the
	// ML-KEM-768 encapsulation key followed by the X25519 point.
	PublicKeySize = mlkem.EncapsulationKeySize768 + 32
	// SecretSize is the length of a prekey secret: the X-Wing seed from
	// which both private keys are expanded.
	SecretSize = 32
	// MaxSigned is the largest encoded signed prekey that [Decode]
	// accepts; a real one is 1343 bytes.
	MaxSigned = 1536
	// MaxLifetime is the longest a prekey may be valid: from its
	// not-before to its expiry.
	MaxLifetime = 31 * 24 * time.Hour
	// DefaultLifetime is the validity of a prekey rotated weekly, plus a
	// week in which senders that have not seen the next one may still use
	// it.
	DefaultLifetime = 14 * 24 * time.Hour
)

// Domain strings. Each separates one use of a key or hash from every other
// one in DeMeS (see docs/PROTOCOL.md, "Forward secrecy").
const (
	// signDomain starts the input of a prekey signature.
	signDomain = "DeMeS prekey v1\x00"
	// idDomain starts the hash that names a prekey.
	idDomain = "DeMeS prekey id v1\x00"
)

// The HPKE suite (RFC 9180 with draft-ietf-hpke-pq): the hybrid KEM
// MLKEM768-X25519 (X-Wing, 0x647a), HKDF-SHA256 (0x0001) and
// ChaCha20Poly1305 (0x0003). The key distribution stays secret if either
// ML-KEM-768 or X25519 holds.
var (
	kem  = hpke.MLKEM768X25519()
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// Errors. Every function of this package wraps one of them, with detail, so
// that a caller can classify a rejection with errors.Is.
var (
	// ErrMalformed: the bytes do not follow the format.
	ErrMalformed = errors.New("malformed")
	// ErrTooLarge: the input is larger than its limit.
	ErrTooLarge = errors.New("too large")
	// ErrSignature: the owner's signature does not verify.
	ErrSignature = errors.New("bad signature")
	// ErrExpired: the prekey is past its expiry.
	ErrExpired = errors.New("prekey expired")
	// ErrNotYetValid: the prekey's not-before is still to come.
	ErrNotYetValid = errors.New("prekey not yet valid")
)

// Prekey is a member's signed public prekey: an MLKEM768-X25519 public key
// that others seal sender keys to, signed by the owner's ed25519 identity
// key, valid from NotBefore until Expires. A Prekey value has been decoded
// and checked (see [Decode]), or made by [Generate]; the zero value is not
// usable.
type Prekey struct {
	// Owner is the ed25519 key of the member who signed it.
	Owner [32]byte
	// ID names the prekey: SHA-256 of a domain string, the owner and the
	// public key, truncated to 16 bytes. A key header names the prekey
	// each stanza is sealed to by this id.
	ID        [IDSize]byte
	NotBefore time.Time
	Expires   time.Time

	// public is the public key, PublicKeySize bytes of signed. It is not
	// kept parsed: Go's parsed ML-KEM-768 key holds its expanded matrix,
	// 7.4 KB against 1,216 bytes, and a node keeps every member's current
	// prekey but seals to each only when it starts a sender key. [SealKey]
	// parses it then (39 us).
	public []byte
	signed []byte // the exact encoding that was signed or decoded
}

// Bytes returns the signed prekey as it travels: the encoding that [Decode]
// reads. The caller must not modify it.
func (p *Prekey) Bytes() []byte { return p.signed }

// PublicKey returns the MLKEM768-X25519 public key. The caller must not
// modify it.
func (p *Prekey) PublicKey() []byte { return p.public }

// ValidAt checks that the prekey may be sealed to at time t: not before its
// not-before, and before its expiry.
func (p *Prekey) ValidAt(t time.Time) error {
	switch {
	case t.Before(p.NotBefore):
		return fmt.Errorf("%w: prekey %x is valid from %s", ErrNotYetValid, p.ID[:4], p.NotBefore.UTC().Format(time.RFC3339))
	case !t.Before(p.Expires):
		return fmt.Errorf("%w: prekey %x expired at %s", ErrExpired, p.ID[:4], p.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// recordWire is the signed part of a prekey: a CBOR array of five items.
type recordWire struct {
	_         struct{} `cbor:",toarray"`
	Version   uint64   // Version
	Owner     []byte   // 32 bytes, ed25519
	Public    []byte   // PublicKeySize bytes
	NotBefore int64    // unix nanoseconds
	Expires   int64    // unix nanoseconds
}

// signedWire is a signed prekey: a CBOR array of the encoded record (a byte
// string, so that the signature covers exact bytes) and its signature.
type signedWire struct {
	_         struct{} `cbor:",toarray"`
	Record    []byte
	Signature []byte // 64 bytes
}

// prekeyID names the public key pub of owner.
func prekeyID(owner [32]byte, pub []byte) [IDSize]byte {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(owner[:])
	h.Write(pub)
	return [IDSize]byte(h.Sum(nil))
}

// Generate makes a fresh prekey of owner, valid for lifetime from notBefore,
// and returns the signed public prekey, to publish, and its secret, to keep
// until the grace period after its expiry (see [SecretSet.Expire]).
func Generate(owner *identity.Identity, notBefore time.Time, lifetime time.Duration) (*Prekey, *Secret, error) {
	var seed [SecretSize]byte
	rand.Read(seed[:]) // never fails (crypto/rand)
	defer clear(seed[:])
	return FromSeed(owner, seed, notBefore, lifetime)
}

// FromSeed is [Generate] with the secret given rather than random: the same
// seed, owner and times give the same bytes. It exists for test vectors;
// real prekeys come from Generate.
func FromSeed(owner *identity.Identity, seed [SecretSize]byte, notBefore time.Time, lifetime time.Duration) (*Prekey, *Secret, error) {
	if owner == nil {
		return nil, nil, errors.New("generate prekey: nil owner")
	}
	if lifetime <= 0 || lifetime > MaxLifetime {
		return nil, nil, fmt.Errorf("generate prekey: lifetime %s, want more than 0 and at most %s", lifetime, MaxLifetime)
	}
	sk, err := kem.NewPrivateKey(seed[:])
	if err != nil {
		return nil, nil, fmt.Errorf("generate prekey: %v", err)
	}
	pub := sk.PublicKey().Bytes()
	ownerKey := owner.Public().Sign
	w := recordWire{
		Version:   Version,
		Owner:     ownerKey[:],
		Public:    pub,
		NotBefore: notBefore.UnixNano(),
		Expires:   notBefore.Add(lifetime).UnixNano(),
	}
	record, err := canon.Marshal(&w)
	if err != nil {
		return nil, nil, fmt.Errorf("generate prekey: %v", err)
	}
	signed, err := canon.Marshal(&signedWire{Record: record, Signature: owner.Sign(signedInput(record))})
	if err != nil {
		return nil, nil, fmt.Errorf("generate prekey: %v", err)
	}
	p, err := Decode(signed)
	if err != nil {
		return nil, nil, fmt.Errorf("generate prekey: %w", err) // cannot happen: we just made it
	}
	return p, newSecret(p, seed, sk), nil
}

func signedInput(record []byte) []byte {
	return append([]byte(signDomain), record...)
}

// Verify decodes a signed prekey, checks it (see [Decode]) and checks that
// it is valid at now. It is what a member does before sealing to a prekey.
func Verify(signed []byte, now time.Time) (*Prekey, error) {
	p, err := Decode(signed)
	if err != nil {
		return nil, err
	}
	if err := p.ValidAt(now); err != nil {
		return nil, fmt.Errorf("verify prekey: %w", err)
	}
	return p, nil
}

// Decode decodes a signed prekey and checks everything but the time: the
// size, the deterministic encoding, the version, the owner's key (a valid
// ed25519 key, as for every signature in DeMeS), the owner's signature over
// the exact record bytes, the public key and the lifetime (positive, at most [MaxLifetime]). A node that
// replays an old log decodes prekeys that have expired since; use [Verify]
// to seal.
func Decode(signed []byte) (*Prekey, error) {
	if len(signed) > MaxSigned {
		return nil, fmt.Errorf("decode prekey: %w: %d bytes, limit %d", ErrTooLarge, len(signed), MaxSigned)
	}
	var sw signedWire
	if err := canon.Decode(signed, &sw); err != nil {
		return nil, fmt.Errorf("decode prekey: %w: %v", ErrMalformed, err)
	}
	if len(sw.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("decode prekey: %w: signature of %d bytes", ErrMalformed, len(sw.Signature))
	}
	var w recordWire
	if err := canon.Decode(sw.Record, &w); err != nil {
		return nil, fmt.Errorf("decode prekey: %w: record: %v", ErrMalformed, err)
	}
	switch {
	case w.Version != Version:
		return nil, fmt.Errorf("decode prekey: %w: version %d, want %d", ErrMalformed, w.Version, Version)
	case len(w.Owner) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("decode prekey: %w: owner key of %d bytes", ErrMalformed, len(w.Owner))
	case len(w.Public) != PublicKeySize:
		return nil, fmt.Errorf("decode prekey: %w: public key of %d bytes, want %d", ErrMalformed, len(w.Public), PublicKeySize)
	case w.Expires <= w.NotBefore:
		return nil, fmt.Errorf("decode prekey: %w: expires before it is valid", ErrMalformed)
	case uint64(w.Expires-w.NotBefore) > uint64(MaxLifetime):
		// The subtraction is done in uint64: two int64 far apart overflow.
		return nil, fmt.Errorf("decode prekey: %w: valid for more than %s", ErrMalformed, MaxLifetime)
	}
	owner := [32]byte(w.Owner)
	if err := identity.CheckSigningKey(owner); err != nil {
		return nil, fmt.Errorf("decode prekey: %w: owner key: %v", ErrMalformed, err)
	}
	// The rule of docs/PROTOCOL.md, "Signatures", as every signature of
	// DeMeS (the owner's key was also checked above, for a clearer error).
	if !sigrule.Verify(w.Owner, signedInput(sw.Record), sw.Signature) {
		return nil, fmt.Errorf("decode prekey: %w", ErrSignature)
	}
	// Parsed here to refuse a key that sealing would fail on (FIPS 203's
	// check of the encapsulation key), and dropped (see Prekey.public).
	if _, err := kem.NewPublicKey(w.Public); err != nil {
		return nil, fmt.Errorf("decode prekey: %w: public key: %v", ErrMalformed, err)
	}
	// The X25519 half may be any 32 bytes to kem.NewPublicKey, but sealing
	// to a point of small order fails (X25519 gives the all-zero secret,
	// which crypto/ecdh refuses): a member publishing one would make every
	// other member's key header fail, and so stop the group from sealing
	// new sender keys. No prekey made by Generate has one.
	if err := checkX25519(w.Public[mlkem.EncapsulationKeySize768:]); err != nil {
		return nil, fmt.Errorf("decode prekey: %w: public key: %v", ErrMalformed, err)
	}
	return &Prekey{
		Owner:     owner,
		ID:        prekeyID(owner, w.Public),
		NotBefore: time.Unix(0, w.NotBefore),
		Expires:   time.Unix(0, w.Expires),
		public:    within(signed, w.Public),
		signed:    signed,
	}, nil
}

// within returns the bytes of buf equal to part, so that a decoded field
// shares the memory of the encoding it came from rather than keeping a
// copy; part itself when buf does not hold it. A CBOR byte string is
// stored whole, so a decoded one is found in its encoding.
func within(buf, part []byte) []byte {
	if i := bytes.Index(buf, part); i >= 0 {
		return buf[i : i+len(part) : i+len(part)]
	}
	return part
}

// probeX25519 is a fixed X25519 private key for checkX25519; it is no
// secret.
var probeX25519, _ = ecdh.X25519().NewPrivateKey([]byte("DeMeS prekey: X25519 point check"))

// checkX25519 refuses an X25519 point of small order: a Diffie-Hellman with
// it gives the all-zero value for every private key, so crypto/ecdh (and
// so HPKE's Seal) refuses it.
func checkX25519(point []byte) error {
	pub, err := ecdh.X25519().NewPublicKey(point)
	if err != nil {
		return err
	}
	if _, err := probeX25519.ECDH(pub); err != nil {
		return fmt.Errorf("X25519 point of small order")
	}
	return nil
}
