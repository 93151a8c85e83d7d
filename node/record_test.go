package node_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/node/simnet"
)

// badRecordSignature takes a message author sealed under key and gives it
// back with one bit of the author's record signature flipped, sealed again
// under the same key, as docs/PROTOCOL.md describes sealing ("Chat
// messages"): the envelope around it stays validly signed, so only the
// record signature tells the forgery.
func badRecordSignature(t *testing.T, key *crypto.SenderKey, id [16]byte, sealed []byte) []byte {
	t.Helper()
	var w struct {
		_          struct{} `cbor:",toarray"`
		Version    uint64
		Epoch      uint64
		KeyID      []byte
		Header     []byte
		Counter    uint64
		Nonce      []byte
		Ciphertext []byte
	}
	if err := cbor.Unmarshal(sealed, &w); err != nil {
		t.Fatal(err)
	}
	if w.Version != 4 {
		t.Fatalf("sealed message version %d; this test seals version 4", w.Version)
	}
	// The ratchet ("The ratchet"): chain key 0 is the sender key.
	hm := func(k []byte, label string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(label))
		return h.Sum(nil)
	}
	ck := key.Key[:]
	for range w.Counter {
		ck = hm(ck, "DeMeS ratchet chain key v1")
	}
	mk := hm(ck, "DeMeS ratchet message key v1")
	ctx := append([]byte("DeMeS sealed message v2\x00"), key.Group[:]...)
	ctx = append(ctx, key.Sender[:]...)
	ctx = binary.BigEndian.AppendUint64(ctx, key.Epoch)
	ctx = append(ctx, key.ID[:]...)
	aad := append([]byte("DeMeS ratchet message v1\x00"), byte(len(ctx)))
	aad = append(aad, ctx...)
	aad = binary.BigEndian.AppendUint64(aad, w.Counter)
	aead, err := chacha20poly1305.NewX(mk)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := aead.Open(nil, w.Nonce, w.Ciphertext, aad)
	if err != nil {
		t.Fatalf("the test's sealing does not match the protocol's: %v", err)
	}
	plain[len(plain)-1] ^= 1 // the last byte of the 64-byte signature
	w.Ciphertext = aead.Seal(nil, w.Nonce, plain, aad)
	out, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := out.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForgedRecordSignatureNotShown: a member proposes a chat message whose
// envelope it signs properly but whose inner record signature (the one a
// transcript proves authorship with) fails. The group commits it (the state
// machine cannot read it), but no member shows it as a message: each counts
// it with the reason. A message shown is one a transcript can prove.
func TestForgedRecordSignatureNotShown(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, 21, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	c.waitVoters(2)
	honest := 0
	r := newRogueMember(t, c, 1)
	id, sealed := r.seal(t, "forged", true)
	// Committed, the forgery is counted with its reason.
	r.propose(t, id, badRecordSignature(t, r.key, id, sealed), "node0 to count the forgery's signature", func() bool {
		return c.rejectedFor(honest, "signature")
	})
	c.send(1, "after the forgery", 10*time.Second)
	c.waitShows(honest, "after the forgery")
	for _, m := range c.committed(honest) {
		if m.ID == hex.EncodeToString(id[:]) || m.Text == "forged" {
			t.Fatalf("the honest member shows a message whose record signature fails: %+v", m)
		}
	}
}
