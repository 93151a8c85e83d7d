package node

import (
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
)

// Shared display names. A member chooses its display name, so an impostor
// can join a group as "alice" beside the real alice, and a reader who goes
// by names cannot tell whose message is whose. The node marks every member
// (and former member, whose messages and joins are still shown) whose name
// a person would not tell apart from another's, and the CLI and the UI
// show the fingerprint beside such a name, as Signal flags a name conflict.

// foldName is the form of a display name under which names that look the
// same to a person are equal: Unicode compatibility normalization (NFKC:
// full-width letters, ligatures and the like become the plain letters),
// case folding, no invisible characters (zero-width ones, variation
// selectors, blank fillers), and white space trimmed and collapsed to one
// space. A name with nothing visible folds to "". Lookalike letters of other
// scripts (a Cyrillic а for a Latin a, UTS #39 "confusables") stay apart.
func foldName(name string) string {
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

// deceptive reports whether a display name can pass for something else
// whatever the other members' names are (helper-57's review): it looks
// blank, so that clients showing it show nothing where they would show a
// fingerprint; it is written as clients label a member without a name (a
// public id, a fingerprint) or the person itself ("You" in the UI); it
// holds bidirectional controls, which draw it in another order than it
// folds ("\u202eecila" is drawn "alice"); or it mixes letters of scripts
// that pass for each other.
func deceptive(name, folded string) bool {
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

// sharedNames returns the keys of names whose display name another key's
// folds to as well (see foldName): each of a pair of lookalikes, not only
// the later one, since the node cannot tell which is the impostor. A
// deceptive name is in it alone. Keys without a name (those shown by
// fingerprint anyway) are never in it.
func sharedNames[K comparable](names map[K]string) map[K]bool {
	byFold := make(map[string][]K, len(names))
	out := map[K]bool{}
	for k, name := range names {
		if name == "" {
			continue
		}
		f := foldName(name)
		if deceptive(name, f) {
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

// namesakes are the members and former members of a group whose display
// name looks like another's: their fingerprints, by public id (the text a
// Message's Author holds). It is never changed once made, so views share
// it between goroutines.
type namesakes map[string]string

// namesakesOf returns the namesakes among ids and their display names.
func namesakesOf(names map[identity.PublicID]string) namesakes {
	shared := sharedNames(names)
	if len(shared) == 0 {
		return nil
	}
	out := make(namesakes, len(shared))
	for id := range shared {
		out[id.String()] = id.Fingerprint()
	}
	return out
}

// mark sets m's NameShared and AuthorFingerprint when its author is one of
// ns.
func (ns namesakes) mark(m *Message) {
	if fp, ok := ns[m.Author]; ok {
		m.NameShared, m.AuthorFingerprint = true, fp
	}
}

// label is how a name of the member id is shown where the API has no flag
// beside it (an invite's inviter, who removed this node, the members
// without a prekey): the name, with the fingerprint after it when the
// member is one of ns (helper-58's QA pass: a lookalike "alice" invited
// and removed with nothing to tell it apart).
func (ns namesakes) label(id, name string) string {
	if fp, ok := ns[id]; ok && name != "" {
		return name + " (" + fp + ")"
	}
	return name
}

// memberLabel is how the member with signing key k is named in words the
// node writes for a person (an alert, a reform's names): its display name
// labelled as by label, or its fingerprint when it has none. ok is false
// when v does not hold k (a former member, or no member at all).
func (v *view) memberLabel(k [32]byte) (id identity.PublicID, name string, ok bool) {
	m, ok := v.members[k]
	if !ok {
		return identity.PublicID{}, "", false
	}
	if m.name == "" {
		return m.id, m.id.Fingerprint(), true
	}
	return m.id, v.namesakes.label(m.id.String(), m.name), true
}

// markAll marks each of ms (see mark).
func (ns namesakes) markAll(ms []Message) {
	if len(ns) == 0 {
		return
	}
	for i := range ms {
		ns.mark(&ms[i])
	}
}

// markEvents sets NameShared and Fingerprint on each of evs whose member
// is one of ns.
func (ns namesakes) markEvents(evs []api.MemberEvent) {
	for i := range evs {
		if fp, ok := ns[evs[i].Member]; ok {
			evs[i].NameShared, evs[i].Fingerprint = true, fp
		}
	}
}

// namesakes returns the group's namesakes by its state: its members and
// former members. Names change only with the members (a join, or a rejoin
// under another name), each of which starts a new membership epoch, so it
// is computed once per epoch. Run's goroutine only.
func (g *group) namesakes() namesakes {
	if !g.namesOK || g.namesEpoch != g.st.Epoch {
		names := make(map[identity.PublicID]string, len(g.st.Members)+len(g.st.Former))
		for _, m := range g.st.Former {
			names[m.ID] = m.Name
		}
		for _, m := range g.st.Members {
			names[m.ID] = m.Name
		}
		g.names, g.namesEpoch, g.namesOK = namesakesOf(names), g.st.Epoch, true
	}
	return g.names
}

// publishMessage tells the subscribers about m, a message of the group, as
// the group's state names its author now. Run's goroutine only.
func (g *group) publishMessage(m Message) {
	g.namesakes().mark(&m)
	g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
}
