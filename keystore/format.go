package keystore

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
)

// This file is the on-disk format (see doc.go for the prose): the header
// that seals the store key, and the records.

const (
	// magic starts every key store file; the version is part of it, as in
	// age's "age-encryption.org/v1".
	magic = "DeMeS key store v1\n"
	// sigDomain prefixes what the identity signs in the header.
	sigDomain = "DeMeS key store header v1\x00"
	// aadDomain prefixes the associated data of every record.
	aadDomain = "DeMeS key store record v1\x00"

	keySize = chacha20poly1305.KeySize
	// maxSealed bounds the age file in the header: one X25519 stanza and a
	// 32-byte payload make about 200 bytes.
	maxSealed = 1024

	// A record is uint32be(body length) || flag || body, and the body is
	// nonce || XChaCha20-Poly1305 ciphertext (with its tag).
	recHeaderSize = 5
	flagLive      = 0x4c // 'L'
	flagErased    = 0x45 // 'E'
	nonceSize     = chacha20poly1305.NonceSizeX
	tagSize       = chacha20poly1305.Overhead

	// The plaintext is uint8(len(name)) || name || uint8(has deadline) ||
	// int64be(deadline, Unix ns) || secret.
	plainFixed = 1 + 1 + 8
	minBody    = nonceSize + plainFixed + 1 + tagSize // a name is at least 1 byte
	maxBody    = nonceSize + plainFixed + MaxName + MaxSecret + tagSize
)

// header is the decoded file header.
type header struct {
	key  []byte // the store key, keySize bytes
	size int    // bytes of the header; the first record starts here
}

// encodeHeader returns a new file header holding key, sealed to id and
// signed by it:
//
//	magic || uint16be(len(sealed)) || sealed || signature (64)
//
// where sealed is the binary age file of key to id's X25519 recipient and
// signature is id's Ed25519 signature of sigDomain || magic || the length ||
// sealed.
func encodeHeader(key []byte, id *identity.Identity) ([]byte, error) {
	var sealed bytes.Buffer
	w, err := age.Encrypt(&sealed, id.AgeIdentity().Recipient())
	if err != nil {
		return nil, fmt.Errorf("seal the store key: %w", err)
	}
	if _, err := w.Write(key); err != nil {
		return nil, fmt.Errorf("seal the store key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal the store key: %w", err)
	}
	if sealed.Len() > maxSealed {
		return nil, fmt.Errorf("seal the store key: %d bytes, more than %d", sealed.Len(), maxSealed)
	}
	h := append([]byte(magic), 0, 0)
	binary.BigEndian.PutUint16(h[len(magic):], uint16(sealed.Len()))
	h = append(h, sealed.Bytes()...)
	sig := id.Sign(append([]byte(sigDomain), h...))
	return append(h, sig...), nil
}

// decodeHeader reads the header at the start of b and opens the store key
// with id. path is only for the errors.
func decodeHeader(b []byte, id *identity.Identity, path string) (*header, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: %s does not start with %q", ErrNotKeyStore, path, magic)
	}
	if len(b) < len(magic)+2 {
		return nil, fmt.Errorf("%w: %s: header cut short", ErrCorrupt, path)
	}
	n := int(binary.BigEndian.Uint16(b[len(magic):]))
	if n > maxSealed {
		return nil, fmt.Errorf("%w: %s: sealed store key of %d bytes, more than %d", ErrCorrupt, path, n, maxSealed)
	}
	end := len(magic) + 2 + n
	if len(b) < end+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %s: header cut short", ErrCorrupt, path)
	}
	r, err := age.Decrypt(bytes.NewReader(b[len(magic)+2:end]), id.AgeIdentity())
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("%w: key store %s is sealed to another identity (not %s)",
				ErrWrongIdentity, path, id.Public().Fingerprint())
		}
		return nil, fmt.Errorf("%w: %s: open the store key: %v", ErrCorrupt, path, err)
	}
	key, err := io.ReadAll(io.LimitReader(r, keySize+1))
	if err != nil {
		clear(key)
		return nil, fmt.Errorf("%w: %s: open the store key: %v", ErrCorrupt, path, err)
	}
	if len(key) != keySize {
		clear(key)
		return nil, fmt.Errorf("%w: %s: the sealed store key is not %d bytes", ErrCorrupt, path, keySize)
	}
	pub := id.Public().Sign
	if !ed25519.Verify(pub[:], append([]byte(sigDomain), b[:end]...), b[end:end+ed25519.SignatureSize]) {
		clear(key)
		return nil, fmt.Errorf("%w: %s: the header is not signed by this identity", ErrCorrupt, path)
	}
	return &header{key: key, size: end + ed25519.SignatureSize}, nil
}

// aad is the associated data of the record at offset off: it binds the
// record to its place, and (through the store key, fresh for every file) to
// its file.
func aad(off int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(aadDomain), uint64(off))
}

// plainSize is the size of the plaintext of (name, secret).
func plainSize(name string, secret []byte) int { return plainFixed + len(name) + len(secret) }

// sealRecord returns the live record of (name, secret, deleteAfter) for
// offset off. The plaintext it builds on the way is erased.
func sealRecord(aead aeadCipher, off int64, name string, secret []byte, deleteAfter time.Time) ([]byte, error) {
	plain := make([]byte, 0, plainSize(name, secret))
	plain = append(plain, byte(len(name)))
	plain = append(plain, name...)
	var deadline int64
	has := byte(0)
	if !deleteAfter.IsZero() {
		has, deadline = 1, deleteAfter.UnixNano()
	}
	plain = append(plain, has)
	plain = binary.BigEndian.AppendUint64(plain, uint64(deadline))
	plain = append(plain, secret...)
	defer clear(plain)

	bodyLen := nonceSize + len(plain) + tagSize
	rec := make([]byte, recHeaderSize+nonceSize, recHeaderSize+bodyLen)
	binary.BigEndian.PutUint32(rec, uint32(bodyLen))
	rec[4] = flagLive
	nonce := rec[recHeaderSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("record nonce: %w", err)
	}
	return aead.Seal(rec, nonce, plain, aad(off)), nil
}

// opened is the content of one record.
type opened struct {
	name        string
	deleteAfter time.Time
	secret      []byte
}

// openRecord decrypts the body of the record at offset off. It returns
// false if the body does not authenticate or its plaintext is malformed
// (which, under the store key, means damage or a bug, never input).
func openRecord(aead aeadCipher, off int64, body []byte) (opened, bool) {
	if len(body) < minBody {
		return opened{}, false
	}
	plain, err := aead.Open(nil, body[:nonceSize], body[nonceSize:], aad(off))
	if err != nil {
		return opened{}, false
	}
	n := int(plain[0])
	if n == 0 || len(plain) < plainFixed+n || plain[1+n] > 1 {
		clear(plain)
		return opened{}, false
	}
	o := opened{name: string(plain[1 : 1+n]), secret: bytes.Clone(plain[plainFixed+n:])}
	if plain[1+n] == 1 {
		o.deleteAfter = time.Unix(0, int64(binary.BigEndian.Uint64(plain[2+n:])))
	}
	clear(plain)
	return o, true
}

// aeadCipher is the part of cipher.AEAD the format uses.
type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// checkPut returns why (name, secret, deleteAfter) cannot be stored, or nil.
func checkPut(name string, secret []byte, deleteAfter time.Time) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case len(name) > MaxName:
		return fmt.Errorf("%w: name of %d bytes, more than %d", ErrInvalid, len(name), MaxName)
	case len(secret) > MaxSecret:
		return fmt.Errorf("%w: secret of %d bytes under %q, more than %d", ErrInvalid, len(secret), name, MaxSecret)
	}
	if !deleteAfter.IsZero() {
		// UnixNano is defined for the years 1678 to 2262 only.
		if deleteAfter.Before(time.Unix(0, math.MinInt64+1)) || deleteAfter.After(time.Unix(0, math.MaxInt64)) {
			return fmt.Errorf("%w: deletion time %v of %q is out of range", ErrInvalid, deleteAfter, name)
		}
	}
	return nil
}
