package transcript_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/demes/demes/transcript"
)

// TestRangeFieldStrict: the range field has one encoding. An exporter that
// writes it any other way, and signs the result, gets a malformed file,
// not a range read some other way: a number with a leading zero, a sign,
// a fraction, an exponent, quotes or past 64 bits, null, a missing or
// extra field, spaces, or a second range.
func TestRangeFieldStrict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, _, _ := f.messageAt(t, "hello from bob")
	carol, _, _ := f.messageAt(t, "hello from carol")
	doc, err := buildRange(t, f.g, f.alice, transcript.Bound{Index: bob}, transcript.Bound{Index: carol})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transcript.Verify(doc, nil); err != nil {
		t.Fatalf("the range transcript: %v", err)
	}
	stated := fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob, carol)
	for _, bad := range []string{
		fmt.Sprintf(`"range":{"from":0%d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":-%d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":+%d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":%d.0,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":%de0,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":"%d","to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":%d,"to":18446744073709551616%d}`, bob, carol),
		`"range":null`,
		`"range":{}`,
		fmt.Sprintf(`"range":{"from":%d}`, bob),
		fmt.Sprintf(`"range":{"to":%d}`, carol),
		fmt.Sprintf(`"range":{"from":%d,"to":%d,"chats":2}`, bob, carol),
		fmt.Sprintf(`"range": {"from":%d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from": %d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":{"from":%d,"to":%d},"range":{"from":1,"to":%d}`, bob, carol, carol),
		fmt.Sprintf(`"RANGE":{"from":%d,"to":%d}`, bob, carol),
		fmt.Sprintf(`"range":[%d,%d]`, bob, carol),
	} {
		t.Run(bad, func(t *testing.T) {
			_, err := transcript.Verify(resign(t, replace(t, doc, stated, bad), f.alice), nil)
			wantErr(t, err, transcript.ErrMalformed)
			t.Log(err)
			if !strings.Contains(err.Error(), "range") && !strings.Contains(err.Error(), "body") {
				t.Errorf("%v does not say where", err)
			}
		})
	}
}

// TestRangeBoundsOracle: with the range signed again at every pair of ends
// around its messages, a range transcript verifies exactly when the range
// starts at 1 or later, does not end before it starts or after the log,
// and holds every message shown; otherwise it is inconsistent.
func TestRangeBoundsOracle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bob, _, _ := f.messageAt(t, "hello from bob")
	carol, _, _ := f.messageAt(t, "hello from carol")
	last := f.g.Entries[len(f.g.Entries)-1].Index
	doc, err := buildRange(t, f.g, f.alice, transcript.Bound{Index: bob}, transcript.Bound{Index: carol})
	if err != nil {
		t.Fatal(err)
	}
	stated := fmt.Sprintf(`"range":{"from":%d,"to":%d}`, bob, carol)
	ends := []uint64{0, 1, bob - 1, bob, bob + 1, carol - 1, carol, carol + 1, last, last + 1, 1<<64 - 1}
	for _, from := range ends {
		for _, to := range ends {
			d := resign(t, replace(t, doc, stated, fmt.Sprintf(`"range":{"from":%d,"to":%d}`, from, to)), f.alice)
			s, err := transcript.Verify(d, nil)
			ok := from >= 1 && from <= to && to <= last && from <= bob && carol <= to
			switch {
			case ok && err != nil:
				t.Errorf("range %d to %d: %v, want it to verify", from, to, err)
			case !ok && err == nil:
				t.Errorf("range %d to %d verifies, with messages at %d and %d", from, to, bob, carol)
			case !ok:
				wantErr(t, err, transcript.ErrInconsistent)
			case s.Range == nil || s.Range.From != from || s.Range.To != to:
				t.Errorf("range %d to %d: the summary states %+v", from, to, s.Range)
			}
		}
	}
}
