package main

import (
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
)

// TestTableWideNames: a table's columns stay in line when a cell holds
// East Asian wide or full-width characters, which a terminal draws two
// cells wide (text/tabwriter counts them as one, and pushed the rest of
// the row out of line).
func TestTableWideNames(t *testing.T) {
	var b strings.Builder
	tw := newTable(&b)
	for _, name := range []string{"Alice", "山田太郎", "Ｂｏｂ", "Zoë", "e\u0301mile", "👍 fan", "👨\u200d👩\u200d👧 fam", "❤\ufe0f fan"} {
		fmt.Fprintf(tw, "  %s\td341 d769\tvoter\n", name)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines {
		i := strings.Index(l, "d341")
		if i < 0 {
			t.Fatalf("line %q", l)
		}
		if w := displayWidth(l[:i]); col < 0 {
			col = w
		} else if w != col {
			t.Errorf("the second column starts at %d in %q, at %d in the first line:\n%s", w, l, col, b.String())
		}
	}
	// The widest name, 山田太郎, is 8 columns wide; 2 before, 2 of padding.
	if col != 2+8+2 {
		t.Errorf("the second column starts at %d, want 12:\n%s", col, b.String())
	}
}

// TestTableAsTabwriter: on text of one cell per character, a table is
// text/tabwriter as the CLI set it up (padding 2, spaces), byte for byte:
// the same column blocks, rows without tabs, blank lines, trailing text.
func TestTableAsTabwriter(t *testing.T) {
	for _, in := range []string{
		"",
		"a\tb\n",
		"a\tbb\tc\nlong cell\tb\tccc\n",
		"group \"x\" (ab)\n  host\tme\n  term\t7\n  members (2):\n    alice\td341\tvoter\n    bo\t70e4\tvoter  online\n",
		"x\ty\n\nlonger x\ty\n",
		"a\tb\tc\nno tabs here\naa\tbb\n",
		"k\tv\nkk\tv\n  tail without newline\tz",
		"\t\tx\na\tb\tc\n",
	} {
		var want, got strings.Builder
		tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
		fmt.Fprint(tw, in)
		tw.Flush()
		tb := newTable(&got)
		fmt.Fprint(tb, in)
		tb.Flush()
		if got.String() != want.String() {
			t.Errorf("%q:\n got %q\nwant %q", in, got.String(), want.String())
		}
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{
		"": 0, "abc": 3, "山田": 4, "Ｂｏｂ": 6, "ｶﾀ": 2, // half-width katakana: 1 each
		"e\u0301": 1, "👍": 2, "한국어": 6, "\u00a0": 1,
		// An emoji is two columns however it is made: pictographs joined
		// by zero-width joiners, a presentation selector, a skin tone.
		"👨\u200d👩\u200d👧": 2, "a👨\u200d👩\u200d👧b": 4, "👩\u200d💻": 2, "🏳\ufe0f\u200d🌈": 2,
		"🏃\u200d♀\ufe0f": 2, "👩\u200d❤\ufe0f\u200d💋\u200d👨": 2, "👨\u200d👩\u200d👧 family": 9,
		"❤\ufe0f": 2, "❤": 1, "1\ufe0f\u20e3": 2, "👍🏽": 2, "🧑🏽\u200d💻": 2, "🇫🇷": 2,
		// A skin tone not after an emoji is a swatch of its own; a joiner
		// between letters (as in Indic scripts) joins nothing away.
		"🏽": 2, "a🏽": 3, "क्\u200dष": 2, "ab\u200dcd": 4,
	} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}
