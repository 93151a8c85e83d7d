package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
)

func seed(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestRoundTrip(t *testing.T) {
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicID(id.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if p != id.Public() {
		t.Fatalf("round trip changed the id")
	}
	id2, err := ParseSecretKey(id.SecretKey())
	if err != nil {
		t.Fatal(err)
	}
	if id2.Public() != id.Public() || !bytes.Equal(id2.Private(), id.Private()) {
		t.Fatal("secret key round trip changed the identity")
	}
	msg := []byte("hello")
	if !ed25519.Verify(p.Sign[:], msg, id.Sign(msg)) {
		t.Fatal("signature does not verify")
	}
	if ed25519.Verify(p.Sign[:], []byte("hellO"), id.Sign(msg)) {
		t.Fatal("signature verifies another message")
	}
}

func TestAgeInterop(t *testing.T) {
	id, _ := FromSeed(seed(1))
	r, err := age.ParseX25519Recipient(id.Public().AgeRecipient())
	if err != nil {
		t.Fatal(err)
	}
	if r.String() != id.AgeIdentity().Recipient().String() {
		t.Fatalf("recipient %s does not match identity's %s", r, id.AgeIdentity().Recipient())
	}
	var buf bytes.Buffer
	w, _ := age.Encrypt(&buf, r)
	io.WriteString(w, "secret")
	w.Close()
	rd, err := age.Decrypt(&buf, id.AgeIdentity())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	if string(got) != "secret" {
		t.Fatalf("got %q", got)
	}
}

func TestFromSeedDeterministic(t *testing.T) {
	a, _ := FromSeed(seed(7))
	b, _ := FromSeed(seed(7))
	c, _ := FromSeed(seed(8))
	if a.Public() != b.Public() {
		t.Fatal("same seed, different ids")
	}
	if a.Public() == c.Public() {
		t.Fatal("different seeds, same id")
	}
}

func TestParseErrors(t *testing.T) {
	id, _ := FromSeed(seed(1))
	good := id.Public().String()
	typo := []byte(good)
	if typo[20] == 'q' {
		typo[20] = 'p'
	} else {
		typo[20] = 'q'
	}
	short, _ := encodeRaw(PublicHRP, make([]byte, 40))
	zero, _ := encodeRaw(PublicHRP, make([]byte, 64))
	other, _ := encodeRaw("other", id.Public().Bytes())
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"age recipient", id.Public().AgeRecipient(), ErrPrefix},
		{"empty", "", ErrPrefix},
		{"typo", string(typo), ErrChecksum},
		{"truncated", good[:len(good)-3], ErrLength},
		{"short", short, ErrLength},
		{"cut short", "demes1nope", ErrLength},
		{"not bech32", good[:20] + "b" + good[21:], ErrMistyped},
		{"mixed case", good[:20] + strings.ToUpper(good[20:]), ErrMistyped},
		{"zero key", zero, ErrKey},
		{"other hrp", other, ErrPrefix},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicID(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParsePublicID(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
	if len(good) != PublicIDLen {
		t.Errorf("a public id is %d characters long, not PublicIDLen (%d)", len(good), PublicIDLen)
	}
	// The reasons are in plain words, not the bech32 decoder's.
	for in, want := range map[string]string{
		"demes1nope":                           "parse public id: wrong length: it is 10 characters long; a public id is 115",
		good[:20] + "b" + good[21:]:            `parse public id: the id was mistyped: it holds "b", which no public id has`,
		good[:20] + strings.ToUpper(good[20:]): "parse public id: the id was mistyped: it mixes upper- and lower-case letters",
	} {
		if _, err := ParsePublicID(in); err == nil || err.Error() != want {
			t.Errorf("ParsePublicID(%q): %v; want %s", in, err, want)
		}
	}
	if _, err := ParsePublicID(strings.ToUpper(good)); err != nil {
		t.Fatalf("upper-case id rejected: %v", err)
	}
	if _, err := ParsePublicID("  " + good + "\n"); err != nil {
		t.Fatalf("id with surrounding space rejected: %v", err)
	}
}

func TestSafetyNumberSymmetric(t *testing.T) {
	a, _ := FromSeed(seed(1))
	b, _ := FromSeed(seed(2))
	c, _ := FromSeed(seed(3))
	ab := SafetyNumber(a.Public(), b.Public())
	if ab != SafetyNumber(b.Public(), a.Public()) {
		t.Fatal("safety number depends on order")
	}
	if ab == SafetyNumber(a.Public(), c.Public()) {
		t.Fatal("safety number does not depend on the peer")
	}
	if len(strings.Fields(ab)) != 12 {
		t.Fatalf("safety number %q: want 12 groups", ab)
	}
	if len(a.Public().Fingerprint()) != 19 {
		t.Fatalf("fingerprint %q", a.Public().Fingerprint())
	}
}

func FuzzParsePublicID(f *testing.F) {
	id, _ := FromSeed(seed(1))
	f.Add(id.Public().String())
	f.Add("demes1")
	f.Add("demes1qqqqqq")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicID(s)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to the same id (modulo case and space).
		if q, err := ParsePublicID(p.String()); err != nil || q != p {
			t.Fatalf("re-parse of %q: %v", p.String(), err)
		}
		if !strings.EqualFold(strings.TrimSpace(s), p.String()) {
			t.Fatalf("%q parsed to %q", s, p.String())
		}
	})
}

// TestSignMatchesStdlib checks that Sign gives crypto/ed25519's signature,
// byte for byte, so that switching the signer changes no signature a
// transcript or a peer has seen.
func TestSignMatchesStdlib(t *testing.T) {
	for i := range 50 {
		id, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, i*37)
		rand.Read(msg)
		got := id.Sign(msg)
		want := ed25519.Sign(ed25519.NewKeyFromSeed(id.Private()[:32]), msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("message of %d bytes: Sign = %x, crypto/ed25519 = %x", len(msg), got, want)
		}
		if pub := id.Public().Sign; !ed25519.Verify(pub[:], msg, got) {
			t.Fatalf("message of %d bytes: signature does not verify", len(msg))
		}
	}
}
