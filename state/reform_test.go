package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/demes/demes/crypto"
)

// successorBody is world w's genesis as a successor genesis that continues
// group old without member 1, as edit changes it.
func successorBody(w *world, edit func(*Continuation)) *SuccessorGenesis {
	g := w.genesisBody()
	c := Continuation{Group: bytes.Repeat([]byte{9}, 16), Index: 12, Head: bytes.Repeat([]byte{5}, 32), Without: w.ids[1].Public().Bytes()}
	if edit != nil {
		edit(&c)
	}
	return &SuccessorGenesis{Name: g.Name, Creator: g.Creator, RaftID: g.RaftID, MaxVoters: g.MaxVoters, Nonce: g.Nonce, Continues: c}
}

// TestSuccessorGenesis: a successor genesis creates its group like any
// genesis, and its continuation is bound to the group id (the hash of the
// payload); a malformed continuation, one that leaves out its own creator,
// or one signed by another member is no genesis.
func TestSuccessorGenesis(t *testing.T) {
	for _, tc := range []struct {
		what string
		edit func(*Continuation)
	}{
		{"a 15-byte group", func(c *Continuation) { c.Group = c.Group[:15] }},
		{"index 0", func(c *Continuation) { c.Index = 0 }},
		{"a 31-byte head", func(c *Continuation) { c.Head = c.Head[:31] }},
		{"no member left out", func(c *Continuation) { c.Without = nil }},
		{"an all-zero member left out", func(c *Continuation) { c.Without = make([]byte, 64) }},
	} {
		w := newWorld(t, 2)
		body := successorBody(w, tc.edit)
		payload, err := Encode(body)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecodeGenesis(payload); !errors.Is(err, ErrGenesis) {
			t.Errorf("%s: decoded (%v)", tc.what, err)
		}
		w.group = GroupIDOf(payload)
		w.s = New(w.group)
		c := w.ids[0]
		wantRejected(t, w.conf(c, crypto.TypeGenesis, body, RaftID(c.Public().Sign), AddVoter), "the first entry must be the genesis")
	}

	w := newWorld(t, 2)
	self, err := Encode(successorBody(w, func(c *Continuation) { c.Without = w.ids[0].Public().Bytes() }))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeGenesis(self); !errors.Is(err, ErrGenesis) {
		t.Errorf("a successor that leaves out its own creator decoded (%v)", err)
	}

	body := successorBody(w, nil)
	payload, err := Encode(body)
	if err != nil {
		t.Fatal(err)
	}
	g, cont, err := DecodeGenesis(payload)
	if err != nil || cont == nil || cont.Index != 12 || g.Name != "g" {
		t.Fatalf("DecodeGenesis = %+v, %+v, %v", g, cont, err)
	}
	if _, cont, err := DecodeGenesis(w.genesisPayload()); err != nil || cont != nil {
		t.Fatalf("a plain genesis decodes as %+v, %v", cont, err)
	}
	// Bound to the id: the world's id is the plain genesis's, so the
	// successor's is not this group's; under its own id it creates it, but
	// signed by another member it does not.
	c, b := w.ids[0], w.ids[1]
	wantRejected(t, w.conf(c, crypto.TypeGenesis, body, RaftID(c.Public().Sign), AddVoter), "does not match the group id")
	w.group = GroupIDOf(payload)
	w.s = New(w.group)
	wantRejected(t, w.conf(b, crypto.TypeGenesis, body, RaftID(c.Public().Sign), AddVoter), "not signed by its creator")
	if r := w.conf(c, crypto.TypeGenesis, body, RaftID(c.Public().Sign), AddVoter); r.Err != nil {
		t.Fatalf("the successor genesis was rejected: %v", r.Err)
	}
	if w.s.Creator != c.Public() || w.s.Name != "g" || w.s.Members[c.Public().Sign] == nil {
		t.Errorf("the successor genesis created %+v", w.s)
	}
}
