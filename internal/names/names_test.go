package names

import (
	"slices"
	"testing"
)

// TestFoldName: names a person would not tell apart fold to one form;
// names that differ to the eye do not.
func TestFoldName(t *testing.T) {
	same := [][]string{
		{"alice", "Alice", "ALICE", " alice ", "alice\t", "\u00a0alice"},
		{"Bob Smith", "bob  smith", "BOB\u3000SMITH", " bob \t smith "},
		// Compatibility forms: full-width letters, a ligature, a
		// superscript, a composed and a decomposed é.
		{"alice", "ａｌｉｃｅ"},
		{"ﬁona", "fiona"},
		{"x²", "x2"},
		{"Ren\u00e9e", "Rene\u0301e"},
		// Case folding beyond ASCII: German sharp s, Greek final sigma.
		{"Straße", "STRASSE"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευς", "οδυσσευσ"},
		// Invisible characters: a zero-width space, a soft hyphen, a
		// zero-width joiner, a variation selector, a Hangul filler
		// (which renders blank).
		{"alice", "al\u200bice", "ali\u00adce", "alice\u200d", "alice\ufe0f", "\u3164alice"},
	}
	for _, group := range same {
		want := Fold(group[0])
		for _, n := range group[1:] {
			if got := Fold(n); got != want {
				t.Errorf("Fold(%q) = %q, want %q as for %q", n, got, want, group[0])
			}
		}
	}
	differ := [][2]string{
		{"alice", "alicia"},
		{"alice", "al ice"},
		{"bob", "bob2"},
		{"rené", "rene"},
		// A lookalike from another script is another name here (UTS #39
		// confusables are not folded).
		{"alice", "\u0430lice"},
	}
	for _, d := range differ {
		if Fold(d[0]) == Fold(d[1]) {
			t.Errorf("Fold(%q) = Fold(%q) = %q", d[0], d[1], Fold(d[0]))
		}
	}
	for _, n := range []string{"", "   ", "\u200b", "\u00a0\t"} {
		if got := Fold(n); got != "" {
			t.Errorf("Fold(%q) = %q, want nothing: no name", n, got)
		}
	}
}

// TestSharedNames: the members whose names look alike are flagged, each of
// them; a unique name, and members without a name, are not.
func TestSharedNames(t *testing.T) {
	names := map[int]string{
		1: "alice",
		2: "Alice ",
		3: "bob",
		4: "",
		5: "",
		6: "carol",
		7: "ＣＡＲＯＬ",
		8: "c a r o l",
	}
	got := Shared(names)
	var keys []int
	for k, shared := range got {
		if shared {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if want := []int{1, 2, 6, 7}; !slices.Equal(keys, want) {
		t.Errorf("Shared flags %v, want %v", keys, want)
	}
	// Deceptive alone (helper-57's review): drawn as "alice" by a
	// right-to-left override, blank, a fingerprint, a public id, "You";
	// a Braille blank is dropped like any invisible character.
	deceptiveNames := map[int]string{1: "alice", 2: "\u202eecila", 3: "\u200b", 4: "d341 d769 1e1e b07d", 5: "demes1qqqq", 6: "You", 7: "alice\u2800", 8: "Cafe", 9: "Yours", 10: "\u0430lice", 11: "Дима", 12: "Ζωή"}
	got = Shared(deceptiveNames)
	keys = keys[:0]
	for k, shared := range got {
		if shared {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if want := []int{1, 2, 3, 4, 5, 6, 7, 10}; !slices.Equal(keys, want) {
		t.Errorf("Shared(%v) flags %v, want %v", deceptiveNames, keys, want)
	}
	if got := Shared(map[int]string{1: "alice", 2: "bob"}); len(got) != 0 {
		t.Errorf("Shared of unique names = %v, want none", got)
	}
	if got := Shared(map[int]string(nil)); len(got) != 0 {
		t.Errorf("Shared of nobody = %v, want none", got)
	}
}
