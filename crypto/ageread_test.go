package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// stanzaIdentity is the simple way to open only one's own stanza: an age
// identity that unwraps only the stanza at index, given to age.Decrypt. It
// costs more per stanza than openAge (see ageread.go), which the tests check
// against it.
type stanzaIdentity struct {
	id           *age.X25519Identity
	index, count int
}

var _ age.Identity = &stanzaIdentity{}

func (s *stanzaIdentity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	if len(stanzas) != s.count {
		return nil, fmt.Errorf("%w: %d stanzas for %d recipients", ErrMalformed, len(stanzas), s.count)
	}
	for i, st := range stanzas {
		if st.Type != "X25519" {
			return nil, fmt.Errorf("%w: stanza #%d is of type %q", ErrMalformed, i, st.Type)
		}
	}
	return s.id.Unwrap(stanzas[s.index : s.index+1])
}

// refOpenAge is openAge done with age.Decrypt.
func refOpenAge(ct []byte, id *age.X25519Identity, index, count, maxPlain int) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(ct), &stanzaIdentity{id: id, index: index, count: count})
	if err != nil {
		switch {
		case errors.Is(err, age.ErrIncorrectIdentity):
			return nil, fmt.Errorf("%w: %v", ErrNotRecipient, err)
		case errors.Is(err, ErrMalformed):
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pt, err := io.ReadAll(io.LimitReader(r, int64(maxPlain)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	case len(pt) > maxPlain:
		return nil, ErrTooLarge
	}
	return pt, nil
}

// errClass names the sentinel an error wraps, for comparing two readers.
func errClass(err error) string {
	for _, s := range []error{ErrNotRecipient, ErrTooLarge, ErrMalformed} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	if err == nil {
		return "ok"
	}
	return "other: " + err.Error()
}

// ageFile encrypts plaintext with age to the first n of ids, and returns
// the file.
func ageFile(t testing.TB, n int, plaintext []byte) []byte {
	var rs []age.Recipient
	for i := range n {
		r, err := testID(t, byte(i+1)).Public().Recipient()
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	var b bytes.Buffer
	w, err := age.Encrypt(&b, rs...)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plaintext)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestOpenAgeAgreesWithAge compares openAge with age.Decrypt on valid files
// of several sizes (the chunk boundaries included) and on every single-byte
// change of some of them: they must accept the same files, with the same
// plaintext, and reject the others for the same reason.
func TestOpenAgeAgreesWithAge(t *testing.T) {
	const maxPlain = 3 * ageChunkSize
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		stanzas, size int
		mutate        bool
	}{
		{1, 0, true}, {1, 1, false}, {3, 100, true}, {2, ageChunkSize - 1, false}, {2, ageChunkSize, false},
		{2, ageChunkSize + 1, false}, {2, 2 * ageChunkSize, false}, {1, maxPlain, false}, {1, maxPlain + 1, false},
	} {
		t.Run(fmt.Sprintf("%d stanzas, %d bytes", tc.stanzas, tc.size), func(t *testing.T) {
			pt := make([]byte, tc.size)
			for i := range pt {
				pt[i] = byte(rng.Uint32())
			}
			file := ageFile(t, tc.stanzas, pt)
			compare := func(what string, f []byte, me, index int) {
				t.Helper()
				id := testID(t, byte(me)).AgeIdentity()
				got, gerr := openAge(f, id, index, tc.stanzas, maxPlain)
				want, werr := refOpenAge(f, id, index, tc.stanzas, maxPlain)
				// openAge rejects an oversized payload before decrypting
				// it, age.Decrypt after: the reason may differ.
				if errors.Is(gerr, ErrTooLarge) && werr != nil {
					return
				}
				if errClass(gerr) != errClass(werr) || !bytes.Equal(got, want) {
					t.Fatalf("%s: openAge: %v; age.Decrypt: %v (plaintexts equal: %v)", what, gerr, werr, bytes.Equal(got, want))
				}
			}
			for i := range tc.stanzas {
				compare("valid file", file, i+1, i)
			}
			compare("reader not in the file", file, tc.stanzas+1, 0)
			if tc.stanzas > 1 {
				compare("reader at another's index", file, 1, 1)
			}
			compare("truncated", file[:len(file)-1], 1, 0)
			compare("byte appended", append(bytes.Clone(file), 0), 1, 0)
			if !tc.mutate {
				return
			}
			for i := range file {
				for _, m := range []byte{0x01, 0x20, 0x80} {
					f := bytes.Clone(file)
					f[i] ^= m
					compare(fmt.Sprintf("byte %d ^ %#x", i, m), f, 1, 0)
				}
			}
		})
	}
}

// keyCatcher is an age identity that remembers the file key it unwrapped, so
// that a test can play a malicious author who knows it.
type keyCatcher struct {
	id  *age.X25519Identity
	key []byte
}

func (k *keyCatcher) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	key, err := k.id.Unwrap(stanzas)
	k.key = key
	return key, err
}

// remac recomputes the header MAC of an age file with count stanzas, as an
// author who knows the file key can after changing the header.
func remac(t *testing.T, file []byte, count int, fileKey []byte) []byte {
	t.Helper()
	file = bytes.Clone(file)
	macAt := len(ageIntro) + count*ageStanzaLen
	key, err := hkdf.Key(sha256.New, fileKey, nil, "header", 32)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, key)
	h.Write(file[:macAt+3])
	copy(file[macAt+len(ageMACStart):], ageB64.EncodeToString(h.Sum(nil)))
	return file
}

// TestOpenAgeAuthorCrafted plays an author who alters the header of its own
// message and signs it again (recomputes the MAC): openAge must never accept
// what age.Decrypt rejects, and it rejects a header that is not in the
// layout the protocol specifies even where age would not look.
func TestOpenAgeAuthorCrafted(t *testing.T) {
	const n, maxPlain = 3, 1000
	file := ageFile(t, n, []byte("record and signature"))
	kc := &keyCatcher{id: testID(t, 1).AgeIdentity()}
	if _, err := age.Decrypt(bytes.NewReader(file), kc); err != nil || len(kc.key) != ageFileKeySize {
		t.Fatalf("catching the file key: %v", err)
	}
	stanza := func(i int) int { return len(ageIntro) + i*ageStanzaLen }
	set := func(at int, s string) []byte {
		f := bytes.Clone(file)
		copy(f[at:], s)
		return remac(t, f, n, kc.key)
	}
	// The last of 43 base64 characters carries 2 padding bits, which must
	// be zero: 'B' (000001) is a non-canonical ending.
	lastOfShare := stanza(1) + len(ageStanzaStart) + ageB64Len - 1
	lastOfBody := lastOfShare + 1 + ageB64Len
	tests := []struct {
		name     string
		file     []byte
		wantOurs error // nil: opens
		ageOK    bool  // whether age.Decrypt opens it
	}{
		{"control: re-MACed unchanged", remac(t, file, n, kc.key), nil, true},
		{"other stanza's body not canonical base64", set(lastOfBody, "B"), ErrMalformed, false},
		{"other stanza's body not base64", set(lastOfBody, "*"), ErrMalformed, false},
		{"other stanza's share not canonical base64", set(lastOfShare, "B"), ErrMalformed, true},
		{"other stanza's type changed", set(stanza(2)+3, "Y25519"), ErrMalformed, false},
		{"intro changed", set(0, "age-encryption.org/v2"), ErrMalformed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := testID(t, 1).AgeIdentity()
			_, gerr := openAge(tc.file, id, 0, n, maxPlain)
			_, werr := refOpenAge(tc.file, id, 0, n, maxPlain)
			if (werr == nil) != tc.ageOK {
				t.Fatalf("age.Decrypt: %v; the test expects it to open: %v", werr, tc.ageOK)
			}
			if gerr == nil && werr != nil {
				t.Fatalf("openAge opens what age.Decrypt rejects (%v)", werr)
			}
			if (gerr == nil) != (tc.wantOurs == nil) || (tc.wantOurs != nil && !errors.Is(gerr, tc.wantOurs)) {
				t.Fatalf("openAge = %v, want %v", gerr, tc.wantOurs)
			}
		})
	}
}

// TestOpenStream checks the STREAM rules that age's own encoder never
// exercises, on payloads built chunk by chunk.
func TestOpenStream(t *testing.T) {
	key := bytes.Repeat([]byte{7}, chacha20poly1305.KeySize)
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(i int, last bool, size int) []byte {
		var nonce [chacha20poly1305.NonceSize]byte
		binary.BigEndian.PutUint64(nonce[3:11], uint64(i))
		if last {
			nonce[11] = 1
		}
		return aead.Seal(nil, nonce[:], bytes.Repeat([]byte{byte(i)}, size), nil)
	}
	full := ageChunkSize
	tests := []struct {
		name    string
		payload []byte
		plain   int // length of the plaintext when it opens
		want    error
	}{
		{"one empty chunk", chunk(0, true, 0), 0, nil},
		{"one short chunk", chunk(0, true, 10), 10, nil},
		{"one full last chunk", chunk(0, true, full), full, nil},
		{"full then short", slices.Concat(chunk(0, false, full), chunk(1, true, 1)), full + 1, nil},
		{"full then empty", slices.Concat(chunk(0, false, full), chunk(1, true, 0)), 0, ErrMalformed},
		{"full chunk not marked last", chunk(0, false, full), 0, ErrMalformed},
		{"short chunk not marked last", chunk(0, false, 10), 0, ErrMalformed},
		{"last chunk missing", slices.Concat(chunk(0, false, full), chunk(1, false, full)), 0, ErrMalformed},
		{"chunks swapped", slices.Concat(chunk(1, false, full), chunk(0, true, 1)), 0, ErrMalformed},
		{"first chunk marked last", slices.Concat(chunk(0, true, full), chunk(1, true, 1)), 0, ErrMalformed},
		{"shorter than a tag", chunk(0, true, 0)[:15], 0, ErrMalformed},
		{"empty", nil, 0, ErrMalformed},
		{"over the limit", slices.Concat(chunk(0, false, full), chunk(1, false, full), chunk(2, true, 1)), 0, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := openStream(key, tc.payload, 2*ageChunkSize)
			if tc.want == nil {
				if err != nil || len(pt) != tc.plain {
					t.Fatalf("openStream = %d bytes, %v; want %d bytes", len(pt), err, tc.plain)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("openStream = %v, want %v", err, tc.want)
			}
		})
	}
}
