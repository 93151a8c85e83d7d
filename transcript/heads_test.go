package transcript_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// TestOldHeadsStillChecked: the state machine keeps only the recent chain
// heads (state.HeadWindow of them, and anchors), but a statement or a
// checkpoint of an older index is still checked against the transcript's
// own history: a true one verifies, a false one is caught. (Checked
// against the state's heads alone, the false statement passed: its index
// is forgotten there.)
func TestOldHeadsStillChecked(t *testing.T) {
	alice, bob := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2)
	g := transcripttest.New(t, transcripttest.GroupID(7), "long", alice, "alice")
	g.Add(alice, bob, "bob")
	g.Chat(alice, "early")
	old := g.State.Applied
	for i := range state.HeadWindow + 100 {
		g.Append([]byte{0xff, byte(i), byte(i >> 8)}) // not an envelope: rejected, chained
	}
	if from := g.State.KeepsHeadsFrom(); from <= old {
		t.Fatalf("the state still keeps the head through %d (from %d)", old, from)
	}
	if _, found := g.State.HeadAt(old); found {
		t.Fatalf("the test needs index %d forgotten, not an anchor", old)
	}
	last := g.Entries[len(g.Entries)-1].Index
	build := func(entries []transcript.Entry, attested ...[]byte) []byte {
		t.Helper()
		all := append([][]byte{g.Head(alice, entries[len(entries)-1].Index)}, attested...)
		doc, err := transcript.BuildAttested(alice, g.ID, entries, all, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	s, err := transcript.Verify(build(g.Entries, g.Head(bob, old)), nil)
	if err != nil {
		t.Fatalf("bob's true statement through %d: %v", old, err)
	}
	var seen bool
	for _, a := range s.Attested {
		seen = seen || (a.Signer == bob.Public() && a.Index == old && !a.Covers)
	}
	if !seen {
		t.Fatalf("bob's statement through %d is not among the attestations: %+v", old, s.Attested)
	}
	lie := g.HeadThrough(old)
	lie[0] ^= 1
	false_ := g.Sign(bob, crypto.TypeHead, &state.CheckpointBody{Index: old, Head: lie[:]})
	_, err = transcript.Verify(build(g.Entries, false_), []identity.PublicID{})
	if !errors.Is(err, transcript.ErrAttestation) || !strings.Contains(err.Error(), "saw another history") {
		t.Fatalf("bob's false statement through %d: %v, want %v", old, err, transcript.ErrAttestation)
	}

	// A checkpoint that old is rejected by the state machine (too old to
	// check there): an ordinary rejection when true, evidence when false.
	truth := g.HeadThrough(old)
	if r := g.Append(g.CheckpointFrame(bob, old, truth)); r.Err == nil || !strings.Contains(r.Err.Error(), "older than") {
		t.Fatalf("a checkpoint of the forgotten %d: %v", old, r.Err)
	}
	if _, err := transcript.Verify(build(g.Entries), nil); err != nil {
		t.Fatalf("with bob's true old checkpoint at %d: %v", last+1, err)
	}
	g.Append(g.CheckpointFrame(bob, old, lie))
	_, err = transcript.Verify(build(g.Entries), nil)
	if !errors.Is(err, transcript.ErrCheckpoint) {
		t.Fatalf("with bob's false old checkpoint: %v, want %v", err, transcript.ErrCheckpoint)
	}
}
