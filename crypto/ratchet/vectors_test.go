package ratchet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"testing/cryptotest"
)

// testdata/crypto/ratchet.json holds the known answers of the chain: each
// step's chain key, message key and associated data, and messages sealed
// under them (the nonces drawn from testing/cryptotest, seed 1, so this
// implementation reproduces the file byte for byte; another one checks the
// derivation and opens each message), and the exported states.
//
// Regenerate after a deliberate format change with
//
//	go test ./crypto/ratchet -run TestVectors -update

var update = flag.Bool("update", false, "rewrite testdata/crypto/ratchet.json")

const vectorFile = "../../testdata/crypto/ratchet.json"

type ratchetVectors struct {
	Comment       string       `json:"comment"`
	MessageLabel  string       `json:"message_label"`
	ChainLabel    string       `json:"chain_label"`
	AADDomain     string       `json:"aad_domain"`
	Seed          string       `json:"seed"`
	Context       string       `json:"context"`
	Steps         []stepVector `json:"steps"`
	SenderState   string       `json:"sender_state"`   // after sealing every step
	ReceiverState string       `json:"receiver_state"` // after opening the last step only
}

type stepVector struct {
	Counter    uint64 `json:"counter,string"`
	ChainKey   string `json:"chain_key"` // chain key number counter
	MessageKey string `json:"message_key"`
	Extra      string `json:"extra"`
	AAD        string `json:"aad"`
	Plaintext  string `json:"plaintext"`
	Sealed     string `json:"sealed"` // nonce || ciphertext || tag
}

func TestVectors(t *testing.T) {
	seed := [KeySize]byte(bytes.Repeat([]byte{0x5e}, KeySize))
	context := []byte("DeMeS test context")
	v := &ratchetVectors{
		Comment: "DeMeS ratchet v1 (docs/PROTOCOL.md, Forward secrecy). Binary values are lower-case hex. " +
			"Nonces drawn from testing/cryptotest seed 1. Regenerate with: go test ./crypto/ratchet -run TestVectors -update",
		MessageLabel: messageLabel, ChainLabel: chainLabel, AADDomain: aadDomain,
		Seed: hex.EncodeToString(seed[:]), Context: hex.EncodeToString(context),
	}
	cryptotest.SetGlobalRandom(t, 1)
	s, err := NewSender(&seed, context)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewReceiver(&seed, context)
	var last []byte
	for i, text := range []string{"", "hello", "the third message"} {
		ck := s.ck
		var mk, next [KeySize]byte
		step(&ck, &mk, &next)
		extra := []byte{byte(i)}
		c, sealed, err := s.Seal([]byte(text), extra)
		if err != nil {
			t.Fatal(err)
		}
		last = sealed
		v.Steps = append(v.Steps, stepVector{Counter: c, ChainKey: hex.EncodeToString(ck[:]), MessageKey: hex.EncodeToString(mk[:]),
			Extra: hex.EncodeToString(extra), AAD: hex.EncodeToString(aad(context, c, extra)), Plaintext: hex.EncodeToString([]byte(text)),
			Sealed: hex.EncodeToString(sealed)})
	}
	if _, err := r.Open(2, last, []byte{2}); err != nil {
		t.Fatal(err)
	}
	sb, _ := s.MarshalBinary()
	rb, _ := r.MarshalBinary()
	v.SenderState, v.ReceiverState = hex.EncodeToString(sb), hex.EncodeToString(rb)

	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(vectorFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("%v (generate with -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Error("ratchet.json differs from what this implementation produces; after a deliberate format change run go test ./crypto/ratchet -run TestVectors -update")
	}
	checkVectors(t, want)
}

// checkVectors checks the stored file as another implementation would: the
// chain from its definition (HMAC-SHA256 with the labels), each message by
// opening it, and the restored states.
func checkVectors(t *testing.T, file []byte) {
	var v ratchetVectors
	if err := json.Unmarshal(file, &v); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ck := unhex(v.Seed)
	for _, st := range v.Steps {
		if !bytes.Equal(ck, unhex(st.ChainKey)) {
			t.Fatalf("step %d: chain key differs", st.Counter)
		}
		mk := hmacSHA256(ck, v.MessageLabel)
		if !bytes.Equal(mk, unhex(st.MessageKey)) {
			t.Fatalf("step %d: message key differs", st.Counter)
		}
		ck = hmacSHA256(ck, v.ChainLabel)
		want := append(append(append([]byte(v.AADDomain), byte(len(v.Context)/2)), unhex(v.Context)...),
			0, 0, 0, 0, 0, 0, 0, byte(st.Counter))
		if !bytes.Equal(append(want, unhex(st.Extra)...), unhex(st.AAD)) {
			t.Fatalf("step %d: aad differs", st.Counter)
		}
		pt, err := OpenWithKey((*[KeySize]byte)(mk), unhex(v.Context), st.Counter, unhex(st.Sealed), unhex(st.Extra))
		if err != nil || !bytes.Equal(pt, unhex(st.Plaintext)) {
			t.Fatalf("step %d: opens to %q, %v", st.Counter, pt, err)
		}
	}
	s, err := RestoreSender(unhex(v.SenderState))
	if err != nil || s.Next() != uint64(len(v.Steps)) || !bytes.Equal(s.ck[:], ck) {
		t.Fatalf("sender state: %v", err)
	}
	r, err := RestoreReceiver(unhex(v.ReceiverState))
	if err != nil || r.Next() != uint64(len(v.Steps)) || len(r.Skipped()) != len(v.Steps)-1 {
		t.Fatalf("receiver state: %v", err)
	}
	for _, st := range v.Steps[:len(v.Steps)-1] {
		pt, err := r.Open(st.Counter, unhex(st.Sealed), unhex(st.Extra))
		if err != nil || !bytes.Equal(pt, unhex(st.Plaintext)) {
			t.Fatalf("restored receiver, step %d: %q, %v", st.Counter, pt, err)
		}
	}
}
