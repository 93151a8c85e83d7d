package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// TestVerifyErrorHidesNoEscapes: a transcript from a member whose display
// name holds terminal escapes (no rule of the group refuses them) fails
// verify with an error that names that member. The error must reach the
// terminal without the escapes: "ESC[2K ESC[1G" would erase the line
// "demes: error: ..." and print "verified" in its place.
func TestVerifyErrorHidesNoEscapes(t *testing.T) {
	t.Parallel()
	const evil = "mallory\x1b[2K\x1b[1Gverified: every signature checks out\x07"
	alice, mallory := transcripttest.Identity(t, 1), transcripttest.Identity(t, 3)
	g := transcripttest.New(t, transcripttest.GroupID(9), "book club", alice, "alice")
	g.Add(alice, mallory, evil)
	g.Chat(alice, "hello")
	last := g.Entries[len(g.Entries)-1].Index
	// mallory's statement of a head the history does not have.
	wrong := g.Sign(mallory, crypto.TypeHead, &state.CheckpointBody{Index: last, Head: make([]byte, 32)})
	doc, err := transcript.BuildAttested(mallory, g.ID, g.Entries, [][]byte{g.Head(mallory, last), wrong}, g.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "transcript.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runDemes(t, nil, "verify", path)
	wantExit(t, r, 1)
	if !strings.Contains(r.stderr, "bad attestation") || !strings.Contains(r.stderr, "mallory") {
		t.Fatalf("verify did not fail on the attestation by name:\n%s", r)
	}
	if strings.ContainsAny(r.stderr, "\x1b\x07") {
		t.Fatalf("verify printed a member's terminal escapes on stderr: %q", r.stderr)
	}
}
