package transcript_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// buildRange exports f's log as exporter, with the messages from..to only,
// carrying the heads of exporter and attesters through the last entry.
func buildRange(t *testing.T, g *transcripttest.Group, exporter *identity.Identity, from, to transcript.Bound, attesters ...*identity.Identity) ([]byte, error) {
	t.Helper()
	last := g.Entries[len(g.Entries)-1].Index
	var heads [][]byte
	for _, id := range append([]*identity.Identity{exporter}, attesters...) {
		heads = append(heads, g.Head(id, last))
	}
	return transcript.BuildWith(exporter, g.ID, g.Entries, transcript.Options{Attestations: heads, From: from, To: to}, g.Now())
}

// messageAt finds the index, id and time of the message with text in f's
// log, as alice opens it: the first in log order (the fixture appends
// carol's message twice, the second a rejected retry; taking either, in
// map order, made the tests that name carol's index flaky).
func (f *fixture) messageAt(t *testing.T, text string) (uint64, [16]byte, time.Time) {
	t.Helper()
	opened := openAll(t, f.g, f.alice)
	for _, e := range f.g.Entries {
		if o := opened[e.Index]; o != nil && string(o.Body) == text {
			return e.Index, o.ID, time.Unix(0, o.Time)
		}
	}
	t.Fatalf("no message %q", text)
	return 0, [16]byte{}, time.Time{}
}

// rangeEnds are the ends of testdata/range.json: bob's message to carol's.
func (f *fixture) rangeEnds(t *testing.T) (from, to transcript.Bound) {
	bob, _, _ := f.messageAt(t, "hello from bob")
	carol, _, _ := f.messageAt(t, "hello from carol")
	return transcript.Bound{Index: bob}, transcript.Bound{Index: carol}
}

// TestRange: a transcript of a range verifies, trusted by every member as
// the whole one is; its summary states the range; it holds every entry, and
// the decrypted messages (texts and keys) of the range only, however the
// range's ends are named.
func TestRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, bobID, bobAt := f.messageAt(t, "hello from bob")
	carol, carolID, carolAt := f.messageAt(t, "hello from carol")
	after, _, _ := f.messageAt(t, "after carol left")
	last := f.g.Entries[len(f.g.Entries)-1].Index
	whole := f.g.Build(f.alice, f.bob, f.carol)
	if _, err := transcript.Verify(whole, f.everyone()); err != nil {
		t.Fatalf("the whole transcript: %v", err)
	}
	day, _ := transcript.ParseBound(bobAt.UTC().Format(time.DateOnly), true)
	for _, tc := range []struct {
		name     string
		from, to transcript.Bound
		lo, hi   uint64
		messages int
	}{
		{"by index", transcript.Bound{Index: bob}, transcript.Bound{Index: carol}, bob, carol, 2},
		{"by id", transcript.Bound{ID: bobID, HasID: true}, transcript.Bound{ID: carolID, HasID: true}, bob, carol, 2},
		{"by time", transcript.Bound{Time: bobAt}, transcript.Bound{Time: carolAt}, bob, carol, 2},
		{"from only", transcript.Bound{Index: bob}, transcript.Bound{}, bob, last, 4},
		{"to only", transcript.Bound{}, transcript.Bound{ID: bobID, HasID: true}, 1, bob, 2},
		{"to past the end", transcript.Bound{Index: carol}, transcript.Bound{Index: last + 100}, carol, last, 3},
		{"to the end of the day", transcript.Bound{Time: carolAt}, day, carol, after, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := buildRange(t, f.g, f.alice, tc.from, tc.to, f.bob, f.carol)
			if err != nil {
				t.Fatal(err)
			}
			s, err := transcript.Verify(doc, f.everyone())
			if err != nil {
				t.Fatal(err)
			}
			if s.Range == nil || s.Range.From != tc.lo || s.Range.To != tc.hi {
				t.Fatalf("range %+v, want %d to %d", s.Range, tc.lo, tc.hi)
			}
			if s.Messages != tc.messages || s.Range.Chats != tc.messages || s.Unsealed != tc.messages {
				t.Errorf("%d messages (%d unsealed), %d accepted in the range; want %d", s.Messages, s.Unsealed, s.Range.Chats, tc.messages)
			}
			if s.Entries != len(f.g.Entries) || s.Chats != 5 || s.Head != f.g.State.Chain || len(s.Checkpoints) != 3 {
				t.Errorf("the history is not the whole log's: %d entries, %d chats, head %+v", s.Entries, s.Chats, s.Head)
			}
			if !bytes.Contains(doc, []byte(fmt.Sprintf(`,"range":{"from":%d,"to":%d},"entries":[`, tc.lo, tc.hi))) {
				t.Error("the range is not in the body as specified")
			}
		})
	}

	// What the file discloses: the texts and keys of the range only.
	doc, err := buildRange(t, f.g, f.alice, transcript.Bound{Index: bob}, transcript.Bound{Index: carol})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"hello before carol", "after carol left", "multi"} {
		if bytes.Contains(doc, []byte(text)) {
			t.Errorf("%q, outside the range, is in the file", text)
		}
	}
	keys := regexp.MustCompile(`"key":"[^"]*"`)
	inWhole := keys.FindAll(whole, -1)
	inRange := keys.FindAll(doc, -1)
	if len(inWhole) != 5 || len(inRange) != 2 {
		t.Fatalf("%d keys in the whole transcript, %d in the range's; want 5 and 2", len(inWhole), len(inRange))
	}
	for _, k := range inRange {
		if !bytes.Contains(whole, k) {
			t.Errorf("%s, in the range's transcript, is no message's key", k)
		}
	}
	// Every entry is there, ciphertext included.
	for _, e := range f.g.Entries {
		entryJSON(t, doc, e)
	}

	// A whole transcript states no range.
	s, err := transcript.Verify(whole, nil)
	if err != nil || s.Range != nil || bytes.Contains(whole, []byte(`"range"`)) {
		t.Errorf("a whole transcript: %v, range %+v", err, s.Range)
	}
}

// TestRangeBuildErrors: a range that names no message, holds none the
// exporter can read, or ends before it starts, is refused with its reason.
func TestRangeBuildErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, bobID, _ := f.messageAt(t, "hello from bob")
	carol, carolID, carolAt := f.messageAt(t, "hello from carol")
	last := f.g.Entries[len(f.g.Entries)-1].Index
	for _, tc := range []struct {
		name     string
		exporter *identity.Identity
		from, to transcript.Bound
		want     error
	}{
		{"unknown id", f.alice, transcript.Bound{ID: [16]byte{1}, HasID: true}, transcript.Bound{}, transcript.ErrNoSuchMessage},
		{"indexes backwards", f.alice, transcript.Bound{Index: carol}, transcript.Bound{Index: bob}, transcript.ErrBackwardRange},
		{"ids backwards", f.alice, transcript.Bound{ID: carolID, HasID: true}, transcript.Bound{ID: bobID, HasID: true}, transcript.ErrBackwardRange},
		{"times backwards", f.alice, transcript.Bound{Time: carolAt}, transcript.Bound{Time: carolAt.Add(-time.Nanosecond)}, transcript.ErrBackwardRange},
		{"after the last message", f.alice, transcript.Bound{Time: carolAt.Add(time.Hour)}, transcript.Bound{}, transcript.ErrEmptyRange},
		{"before the first message", f.alice, transcript.Bound{}, transcript.Bound{Time: transcripttest.Epoch}, transcript.ErrEmptyRange},
		{"past the log", f.alice, transcript.Bound{Index: last + 1}, transcript.Bound{}, transcript.ErrEmptyRange},
		{"no message there", f.alice, transcript.Bound{Index: 2}, transcript.Bound{Index: 3}, transcript.ErrEmptyRange},
		// Carol joined after it: the message is there, but not hers to read.
		{"a message the exporter cannot read", f.carol, transcript.Bound{Index: f.before}, transcript.Bound{Index: f.before}, transcript.ErrEmptyRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildRange(t, f.g, tc.exporter, tc.from, tc.to)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestRangeTamper: an exporter cannot show a message outside the range it
// states, nor can anyone edit the range after signing; the messages in the
// range are checked as a whole transcript's are, their keys included.
func TestRangeTamper(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, _, _ := f.messageAt(t, "hello from bob")
	carol, _, _ := f.messageAt(t, "hello from carol")
	after, _, _ := f.messageAt(t, "after carol left")
	doc, err := buildRange(t, f.g, f.alice, transcript.Bound{Index: bob}, transcript.Bound{Index: carol}, f.bob, f.carol)
	if err != nil {
		t.Fatal(err)
	}
	whole := f.g.Build(f.alice)
	stated := fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob, carol)
	// messageJSON is the text of the message at index idx in d.
	messageJSON := func(t *testing.T, d []byte, idx uint64) string {
		t.Helper()
		m := regexp.MustCompile(fmt.Sprintf(`\{"index":%d,"id":[^}]*\}`, idx)).Find(d)
		if m == nil {
			t.Fatalf("no message at index %d", idx)
		}
		return string(m)
	}
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T) []byte
		want    error
		mention string
	}{
		{"a message added after the range, signed again", func(t *testing.T) []byte {
			m := messageJSON(t, whole, after)
			return resign(t, replace(t, doc, `],"attestations":`, ","+m+`],"attestations":`), f.alice)
		}, transcript.ErrInconsistent, fmt.Sprintf("message at index %d lies outside", after)},
		{"the range narrowed after signing", func(t *testing.T) []byte {
			return replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob, carol-1))
		}, transcript.ErrInconsistent, fmt.Sprintf("message at index %d lies outside", carol)},
		{"the range narrowed and signed again", func(t *testing.T) []byte {
			return resign(t, replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob+1, carol)), f.alice)
		}, transcript.ErrInconsistent, fmt.Sprintf("message at index %d lies outside", bob)},
		{"the range widened after signing", func(t *testing.T) []byte {
			return replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, 1, carol))
		}, transcript.ErrExporterSignature, ""},
		{"the range removed after signing", func(t *testing.T) []byte {
			return replace(t, doc, ","+stated, "")
		}, transcript.ErrExporterSignature, ""},
		{"a range that ends before it starts", func(t *testing.T) []byte {
			return resign(t, replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, carol, bob)), f.alice)
		}, transcript.ErrInconsistent, "starts after it ends"},
		{"a range past the log", func(t *testing.T) []byte {
			return resign(t, replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob, f.g.Entries[len(f.g.Entries)-1].Index+1)), f.alice)
		}, transcript.ErrInconsistent, "ends after the last entry"},
		{"a range from 0", func(t *testing.T) []byte {
			return resign(t, replace(t, doc, stated, fmt.Sprintf(`"range":{"from":0,"to":%d}`, carol)), f.alice)
		}, transcript.ErrInconsistent, "start at 1"},
		{"the range's fields swapped", func(t *testing.T) []byte {
			return replace(t, doc, stated, fmt.Sprintf(`"range":{"to":%d,"from":%d}`, carol, bob))
		}, transcript.ErrMalformed, `unexpected field "to"`},
		{"the range elsewhere in the body", func(t *testing.T) []byte {
			d := replace(t, doc, ","+stated, "")
			return replace(t, d, `,"head":{`, ","+stated+`,"head":{`)
		}, transcript.ErrMalformed, `unexpected field "range"`},
		{"an edited text in the range", func(t *testing.T) []byte {
			return resign(t, replace(t, doc, `"text":"hello from bob"`, `"text":"hello from rob"`), f.alice)
		}, transcript.ErrEditedText, "not the text its author signed"},
		{"another message's key in the range", func(t *testing.T) []byte {
			keys := regexp.MustCompile(`"key":"[^"]*"`).FindAll(doc, -1)
			if len(keys) != 2 {
				t.Fatalf("%d keys", len(keys))
			}
			d := replace(t, doc, string(keys[0]), `"key":"K"`)
			return resign(t, replace(t, d, `"key":"K"`, string(keys[1])), f.alice)
		}, transcript.ErrEditedText, "does not open its entry's ciphertext"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := transcript.Verify(tc.edit(t), nil)
			wantErr(t, err, tc.want)
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("%v does not say %q", err, tc.mention)
			}
			t.Log(err)
		})
	}
}

// TestRangeTrust: a range transcript keeps every entry, so the members'
// attestations check as for the whole transcript, and an exporter that drops
// an entry from a range transcript is caught as from a whole one.
func TestRangeTrust(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, _, _ := f.messageAt(t, "hello from bob")
	carol, _, _ := f.messageAt(t, "hello from carol")
	doc, err := buildRange(t, f.g, f.alice, transcript.Bound{Index: bob}, transcript.Bound{Index: carol}, f.bob, f.carol)
	if err != nil {
		t.Fatal(err)
	}
	s, err := transcript.Verify(doc, f.everyone())
	if err != nil || len(s.Trusted) != 3 {
		t.Fatalf("trusted by every member: %v (%d trusted)", err, len(s.Trusted))
	}
	// The last entry dropped and the range signed again: bob's head no
	// longer reaches the end.
	n := len(f.g.Entries)
	cut, err := transcript.BuildWith(f.alice, f.g.ID, f.g.Entries[:n-1], transcript.Options{
		Attestations: [][]byte{f.g.Head(f.bob, f.g.Entries[n-1].Index)},
		From:         transcript.Bound{Index: bob}, To: transcript.Bound{Index: carol},
	}, f.g.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = transcript.Verify(cut, []identity.PublicID{f.bob.Public()})
	if !errors.Is(err, transcript.ErrUntrusted) {
		t.Errorf("last entry dropped from a range transcript: %v, want %v", err, transcript.ErrUntrusted)
	}
}

func TestParseBound(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		end  bool
		want transcript.Bound
	}{
		{"120", false, transcript.Bound{Index: 120}},
		{"0a1b2c3d4e5f60718293a4b5c6d7e8f9", false, transcript.Bound{ID: [16]byte{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9}, HasID: true}},
		// 32 decimal digits: an id, as no log index has so many.
		{"12345678901234567890123456789012", false, transcript.Bound{ID: [16]byte{0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12}, HasID: true}},
		{"2026-12-04", false, transcript.Bound{Time: day}},
		{"2026-12-04", true, transcript.Bound{Time: day.Add(24*time.Hour - time.Nanosecond)}},
		{"2026-12-04T15:04:05Z", true, transcript.Bound{Time: day.Add(15*time.Hour + 4*time.Minute + 5*time.Second)}},
		{"2026-12-04T16:04:05.5+01:00", false, transcript.Bound{Time: day.Add(15*time.Hour + 4*time.Minute + 5500*time.Millisecond)}},
	} {
		got, err := transcript.ParseBound(tc.in, tc.end)
		if err != nil || got.Index != tc.want.Index || got.ID != tc.want.ID || got.HasID != tc.want.HasID || !got.Time.Equal(tc.want.Time) {
			t.Errorf("ParseBound(%q, %v) = %+v, %v; want %+v", tc.in, tc.end, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1.5", "99999999999999999999999", "0a1b2c3d4e5f60718293a4b5c6d7e8f", "yesterday", "2026-13-01", "2026-12-04 15:04", "g0000000000000000000000000000000"} {
		if b, err := transcript.ParseBound(bad, false); err == nil {
			t.Errorf("ParseBound(%q) = %+v", bad, b)
		}
	}
	if err := transcript.CheckOrder(transcript.Bound{Index: 5}, transcript.Bound{Index: 4}); !errors.Is(err, transcript.ErrBackwardRange) {
		t.Errorf("5 to 4: %v", err)
	}
	if err := transcript.CheckOrder(transcript.Bound{Index: 5}, transcript.Bound{Index: 5}); err != nil {
		t.Errorf("5 to 5: %v", err)
	}
}
