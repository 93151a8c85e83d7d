package crypto

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// This file reads the age files that SealMessage writes, opening only the
// reader's own stanza.
//
// age.Decrypt with an identity that tries one stanza would do, but it parses
// and then re-serializes every stanza of the header (for the header MAC) and
// allocates two 64 KiB chunk buffers: for 200 recipients that made opening
// 2.4 times as slow as for 2. An age header with only X25519 stanzas has a
// fixed layout, because age's encoding is canonical and an X25519 stanza's
// share and wrapped key are both 32 bytes (43 base64 characters, one line):
//
//	"age-encryption.org/v1\n"
//	n x ("-> X25519 " share "\n" wrapped-key "\n")   98 bytes each
//	"--- " mac "\n"                                    48 bytes
//	nonce (16 bytes) || payload (STREAM)
//
// So the reader finds its stanza by arithmetic, unwraps it with age's own
// X25519 identity, and then checks the header MAC and decrypts the payload
// as the age specification (age-encryption.org/v1) defines them. Every other
// stanza is still checked for well-formedness, with no allocation, so that
// this reader accepts nothing that age.Decrypt would reject; the tests check
// the two agree.

const (
	ageIntro       = "age-encryption.org/v1\n"
	ageStanzaStart = "-> X25519 "
	ageB64Len      = 43 // base64 (unpadded) of 32 bytes
	ageStanzaLen   = len(ageStanzaStart) + ageB64Len + 1 + ageB64Len + 1
	ageMACStart    = "--- "
	ageMACLen      = len(ageMACStart) + ageB64Len + 1
	ageNonceSize   = 16
	ageChunkSize   = 64 << 10
	ageEncChunk    = ageChunkSize + chacha20poly1305.Overhead
	ageFileKeySize = 16
)

var ageB64 = base64.RawStdEncoding.Strict()

// errAge marks a ciphertext that is not a well-formed age file of the
// expected shape.
func errAge(format string, a ...any) error {
	return fmt.Errorf("%w: age file: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// decodeB64Line decodes the 43 base64 characters at b[0:43] followed by a
// newline into dst, strictly (canonical padding bits), as age does.
func decodeB64Line(dst *[32]byte, b []byte) bool {
	if len(b) < ageB64Len+1 || b[ageB64Len] != '\n' {
		return false
	}
	n, err := ageB64.Decode(dst[:], b[:ageB64Len])
	return err == nil && n == 32
}

// openAge decrypts ct, an age file with count X25519 stanzas, with id, using
// only the stanza at index. A stanza that does not open with id gives
// ErrNotRecipient; any other failure gives ErrMalformed or ErrTooLarge.
func openAge(ct []byte, id *age.X25519Identity, index, count, maxPlain int) ([]byte, error) {
	macAt := len(ageIntro) + count*ageStanzaLen
	payloadAt := macAt + ageMACLen + ageNonceSize
	if len(ct) < payloadAt+chacha20poly1305.Overhead {
		return nil, errAge("%d bytes, too short for %d stanzas", len(ct), count)
	}
	if string(ct[:len(ageIntro)]) != ageIntro {
		return nil, errAge("bad intro line")
	}
	var share, wrapped, scratch [32]byte
	for i := range count {
		s := ct[len(ageIntro)+i*ageStanzaLen:]
		if string(s[:len(ageStanzaStart)]) != ageStanzaStart {
			return nil, errAge("stanza #%d is not an X25519 stanza of the expected layout", i)
		}
		s = s[len(ageStanzaStart):]
		a, b := &scratch, &scratch
		if i == index {
			a, b = &share, &wrapped
		}
		if !decodeB64Line(a, s) || !decodeB64Line(b, s[ageB64Len+1:]) {
			return nil, errAge("stanza #%d is not an X25519 stanza of the expected layout", i)
		}
	}
	var mac [32]byte
	if string(ct[macAt:macAt+len(ageMACStart)]) != ageMACStart || !decodeB64Line(&mac, ct[macAt+len(ageMACStart):]) {
		return nil, errAge("no MAC line after %d stanzas", count)
	}

	// age's X25519 identity does the unwrapping: the key agreement, and
	// the rejection of a share that is not a valid point.
	stanza := &age.Stanza{Type: "X25519", Args: []string{ageB64.EncodeToString(share[:])}, Body: wrapped[:]}
	fileKey, err := id.Unwrap([]*age.Stanza{stanza})
	if errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, fmt.Errorf("%w: stanza #%d is not for our key", ErrNotRecipient, index)
	} else if err != nil || len(fileKey) != ageFileKeySize {
		return nil, errAge("stanza #%d: %v", index, err)
	}

	// The header MAC covers the header up to and including "---".
	hmacKey, err := hkdf.Key(sha256.New, fileKey, nil, "header", 32)
	if err != nil {
		return nil, errAge("%v", err)
	}
	h := hmac.New(sha256.New, hmacKey)
	h.Write(ct[:macAt+len(ageMACStart)-1])
	if !hmac.Equal(h.Sum(nil), mac[:]) {
		return nil, errAge("bad header MAC")
	}

	nonce := ct[macAt+ageMACLen : payloadAt]
	streamKey, err := hkdf.Key(sha256.New, fileKey, nonce, "payload", chacha20poly1305.KeySize)
	if err != nil {
		return nil, errAge("%v", err)
	}
	return openStream(streamKey, ct[payloadAt:], maxPlain)
}

// openStream decrypts an age payload: ChaCha20-Poly1305 chunks of 64 KiB of
// plaintext, the nonce being an 11-byte big-endian chunk counter and a final
// byte that is 1 for the last chunk and 0 for the others. The last chunk may
// be shorter, but it may only be empty if it is the only one.
func openStream(key, payload []byte, maxPlain int) ([]byte, error) {
	if len(payload) == 0 {
		return nil, errAge("no payload")
	}
	chunks := (len(payload) + ageEncChunk - 1) / ageEncChunk
	if len(payload)-chunks*chacha20poly1305.Overhead > maxPlain {
		return nil, fmt.Errorf("%w: plaintext over %d bytes", ErrTooLarge, maxPlain)
	}
	last := payload[(chunks-1)*ageEncChunk:]
	if len(last) < chacha20poly1305.Overhead || (chunks > 1 && len(last) == chacha20poly1305.Overhead) {
		return nil, errAge("truncated or empty last chunk")
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, errAge("%v", err)
	}
	out := make([]byte, 0, len(payload)-chunks*chacha20poly1305.Overhead)
	var nonce [chacha20poly1305.NonceSize]byte
	for i := range chunks {
		in := payload[i*ageEncChunk : min((i+1)*ageEncChunk, len(payload))]
		binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
		if i == chunks-1 {
			nonce[11] = 1
		}
		if out, err = aead.Open(out, nonce[:], in, nil); err != nil {
			return nil, errAge("payload chunk #%d does not authenticate", i)
		}
	}
	return out, nil
}
