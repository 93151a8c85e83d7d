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
