package transcript_test

import (
	"bytes"
	"errors"
	"flag"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

var update = flag.Bool("update", false, "rewrite testdata/transcript.json")

// The golden transcripts are valid transcripts kept in testdata, so that
// every run (and every fuzzing process) checks the same bytes: sealing is
// randomized, so a transcript built afresh differs each time. golden is the
// fixture group exported by alice; small is a group of two with one message,
// the seed of the fuzzer, which minimizes large inputs slowly. Regenerate
// them with go test ./transcript -run TestGolden -update. ranged is the
// fixture group exported by alice with the messages of bob and carol only
// (a transcript of a range).
const (
	golden = "testdata/transcript.json"
	small  = "testdata/small.json"
	ranged = "testdata/range.json"
)

func readGolden(tb testing.TB, name string) []byte {
	tb.Helper()
	doc, err := os.ReadFile(name)
	if err != nil {
		tb.Fatalf("%v (regenerate with: go test ./transcript -run TestGolden -update)", err)
	}
	return doc
}

// smallGroup is the group of testdata/small.json.
func smallGroup(t testing.TB) (*transcripttest.Group, *identity.Identity, *identity.Identity) {
	alice, bob := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2)
	g := transcripttest.New(t, transcripttest.GroupID(4), "pair", alice, "alice")
	g.Add(alice, bob, "bob")
	g.Chat(alice, "hi bob")
	g.Checkpoint(bob)
	return g, alice, bob
}

func TestGolden(t *testing.T) {
	f := newFixture(t) // the same identities and group; not the same ciphertexts
	g, alice, bob := smallGroup(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, f.g.Build(f.alice, f.bob, f.carol), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(small, g.Build(alice, bob), 0o644); err != nil {
			t.Fatal(err)
		}
		from, to := f.rangeEnds(t)
		doc, err := buildRange(t, f.g, f.alice, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ranged, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := transcript.Verify(readGolden(t, golden), f.everyone())
	if err != nil {
		t.Fatal(err)
	}
	if s.Exporter != f.alice.Public() || s.Messages != 5 || s.Rejected != 5 || s.Entries != len(f.g.Entries) {
		t.Errorf("%+v", s)
	}
	s, err = transcript.Verify(readGolden(t, small), []identity.PublicID{alice.Public(), bob.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Messages != 1 || s.Entries != len(g.Entries) || len(s.Checkpoints) != 1 {
		t.Errorf("%+v", s)
	}
	s, err = transcript.Verify(readGolden(t, ranged), []identity.PublicID{f.alice.Public()})
	if err != nil {
		t.Fatal(err)
	}
	from, to := f.rangeEnds(t)
	if s.Range == nil || s.Range.From != from.Index || s.Range.To != to.Index || s.Messages != 2 || s.Entries != len(f.g.Entries) {
		t.Errorf("%+v, range %+v", s, s.Range)
	}
}

// oneSentinel fails unless err wraps exactly one of the errors of the package.
func oneSentinel(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, e := range allErrors {
		if errors.Is(err, e) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%v wraps %d sentinel errors, want 1", err, n)
	}
}

// TestMutations changes single bytes of a valid transcript, and cuts it: no
// change ever verifies, and every error is classified.
func TestMutations(t *testing.T) {
	t.Parallel()
	doc := readGolden(t, golden)
	rng := rand.New(rand.NewSource(1))
	n := 300
	if testing.Short() {
		n = 30
	}
	for range n {
		d := bytes.Clone(doc)
		i := rng.Intn(len(d))
		d[i] ^= byte(1 + rng.Intn(255))
		_, err := transcript.Verify(d, nil)
		if err == nil {
			t.Fatalf("verified with byte %d changed from %q to %q", i, doc[i], d[i])
		}
		oneSentinel(t, err)
	}
	for range n / 10 {
		i := rng.Intn(len(doc))
		_, err := transcript.Verify(doc[:i], nil)
		if !errors.Is(err, transcript.ErrTruncated) {
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
}

// FuzzVerify: Verify never panics, classifies every error, and accepts no
// transcript but the valid one it was seeded with (it cannot forge the
// exporter's signature, and the format has one encoding of everything).
func FuzzVerify(f *testing.F) {
	valid := readGolden(f, small)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte(`"text":"hi bob"`), []byte(`"text":"hi rob"`), 1))
	f.Add([]byte(`{"version":1,"body":{"group_id":"00000000000000000000000000000000","name":"","exporter":"","exported_at":"","entries":[],"messages":[],"head":{"index":0,"entries":0,"hash":""}},"signature":""}` + "\n"))
	f.Add([]byte("{}"))
	f.Add(bytes.Replace(valid, []byte(`","entries":[`), []byte(`","range":{"from":1,"to":3},"entries":[`), 1))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, err := transcript.Verify(doc, nil)
		switch {
		case err == nil && !bytes.Equal(doc, valid):
			t.Fatalf("a transcript other than the valid one verifies:\n%q", doc)
		case err != nil && bytes.Equal(doc, valid):
			t.Fatal(err)
		case err != nil:
			oneSentinel(t, err)
		}
	})
}
