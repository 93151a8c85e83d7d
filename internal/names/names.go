// Package names tells display names apart as a person would, or finds
// that a person would not. A member chooses its display name, so an
// impostor can join a group as "alice" beside the real alice; [Shared]
// finds the names a reader could mistake for another's, and the clients
// show the fingerprint beside each (the node flags them as name_shared,
// and `demes verify` does from the names a transcript holds).
//
// [Fold] is the form under which names that look the same are equal;
// [Deceptive] says whether a name passes for something else whatever the
// other names are.
package names

import (
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Fold is the form of a display name under which names that look the
// same to a person are equal: Unicode compatibility normalization (NFKC:
// full-width letters, ligatures and the like become the plain letters),
// case folding, no invisible characters (zero-width ones, variation
// selectors, blank fillers), and white space trimmed and collapsed to one
// space. A name with nothing visible folds to "". Lookalike letters of other
// scripts (a Cyrillic а for a Latin a, UTS #39 "confusables") stay apart.
func Fold(name string) string {
	// NFKC on both sides of the fold, as Unicode's NFKC_Casefold: what a
	// fold returns need not be normalized ("ǰ" folds to a j and a
	// combining caron).
	s := norm.NFKC.String(cases.Fold().String(norm.NFKC.String(name)))
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// invisible reports whether r is drawn as nothing (a format character such
// as a zero-width space, a variation selector, a default-ignorable filler,
// and the blank symbols that are none of those: the Braille blank and the
// Egyptian hieroglyph blanks, helper-57's review).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
		r == '⠀' || r == '𓑁' || r == '𓑂'
}

// fingerprintLike matches a folded name written as a fingerprint is shown
// ("d341 d769 1e1e b07d"), two groups of four hex digits or more.
var fingerprintLike = regexp.MustCompile(`^[0-9a-f]{4}( [0-9a-f]{4})+$`)

// Deceptive reports whether a display name (folded, its Fold) can pass
// for something else whatever the other members' names are (helper-57's
// review): it looks
// blank, so that clients showing it show nothing where they would show a
// fingerprint; it is written as clients label a member without a name (a
// public id, a fingerprint) or the person itself ("You" in the UI); it
// holds bidirectional controls, which draw it in another order than it
// folds ("\u202eecila" is drawn "alice"); or it mixes letters of scripts
// that pass for each other.
func Deceptive(name, folded string) bool {
	if folded == "" || strings.IndexFunc(name, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }) >= 0 {
		return true
	}
	return folded == "you" || strings.HasPrefix(folded, "demes1") || fingerprintLike.MatchString(folded) || mixedScripts(folded)
}

// lookalikeScripts are the scripts whose letters pass for each other's
// (a Cyrillic а for a Latin a, a Greek ο for an o).
var lookalikeScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek}

// mixedScripts reports whether name has letters of more than one of
// lookalikeScripts: "аlice", with a Cyrillic а, is drawn as "alice" but
// folds apart from it. (A name written wholly in another script that
// happens to look like a Latin one, UTS #39's whole-script confusables,
// is not caught.)
func mixedScripts(name string) bool {
	seen := -1
	for _, r := range name {
		for i, t := range lookalikeScripts {
			if unicode.Is(t, r) {
				if seen >= 0 && seen != i {
					return true
				}
				seen = i
			}
		}
	}
	return false
}

// Shared returns the keys of names whose display name another key's
// folds to as well (see Fold): each of a pair of lookalikes, not only
// the later one, since the node cannot tell which is the impostor. A
// deceptive name is in it alone. Keys without a name (those shown by
// fingerprint anyway) are never in it.
func Shared[K comparable](names map[K]string) map[K]bool {
	byFold := make(map[string][]K, len(names))
	out := map[K]bool{}
	for k, name := range names {
		if name == "" {
			continue
		}
		f := Fold(name)
		if Deceptive(name, f) {
			out[k] = true
			continue
		}
		byFold[f] = append(byFold[f], k)
	}
	for _, ks := range byFold {
		if len(ks) > 1 {
			for _, k := range ks {
				out[k] = true
			}
		}
	}
	return out
}
