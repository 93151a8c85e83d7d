package content

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrNotEmoji is the error of [CheckReaction]: what this node was asked to
// send as a reaction is not one emoji. It wraps [ErrInvalid].
var ErrNotEmoji = fmt.Errorf("%w: a reaction is not one emoji", ErrInvalid)

// notEmojiError says, in words for a person, that e is not a reaction.
type notEmojiError struct{ e string }

func (n notEmojiError) Error() string {
	return fmt.Sprintf("a reaction is one emoji, such as 👍; %q is not one", n.e)
}

func (n notEmojiError) Unwrap() error { return ErrNotEmoji }

// CheckReaction reports whether e may be sent as a reaction: one emoji,
// such as 👍, ❤️, 👍🏽, 👩‍💻, 🇫🇷 or 1️⃣, and no letters, digits, spaces,
// control characters or punctuation; a skin tone on its own (🏽) is none.
// e is checked as given: a space around it is refused, not trimmed (the
// CLI, the local API and the node check the same string, and send exactly
// what passed). Its error wraps [ErrNotEmoji].
//
// It is stricter than [CheckEmoji], on purpose and only for what this node
// sends: the members' nodes accept any reaction CheckEmoji accepts (that
// rule is part of the format every node applies alike, and an earlier DeMeS
// sent any short text), so tightening it there would make nodes disagree.
//
// Go has no table of Unicode's emoji property, so one emoji is told by its
// shape: one or more pictographs (symbols, not letters, digits or ASCII)
// joined by zero-width joiners, each with an optional presentation
// selector, skin tone or tag sequence (a subdivision flag); or a pair of
// regional indicators (a flag); or a keycap (0-9, # or * then U+20E3).
func CheckReaction(e string) error {
	if len(e) > MaxEmoji && utf8.ValidString(e) && oneEmoji([]rune(e)) {
		// One emoji, too long for the format (a couple with two skin
		// tones is 35 bytes): say so, not that it is none.
		return fmt.Errorf("this emoji is %d bytes, and a reaction may be at most %d; choose a shorter one: %w", len(e), MaxEmoji, ErrInvalid)
	}
	if CheckEmoji(e) != nil || e == "" || !oneEmoji([]rune(e)) {
		return notEmojiError{e}
	}
	return nil
}

// Code points of emoji sequences (Unicode Technical Standard #51).
const (
	zwj           = '\u200d' // zero-width joiner: joins emoji into one (👩‍💻)
	vs15          = '\ufe0e' // text presentation selector
	vs16          = '\ufe0f' // emoji presentation selector (❤️)
	keycap        = '\u20e3' // combining enclosing keycap (1️⃣)
	cancelTag     = '\U000e007f'
	firstTag      = '\U000e0020' // tags spell a subdivision flag (🏴 + "gbsct" + cancel)
	lastTag       = '\U000e007e'
	firstTone     = '\U0001f3fb' // skin tone modifiers
	lastTone      = '\U0001f3ff'
	blackFlag     = '\U0001f3f4' // 🏴, the base of a subdivision flag
	tagA, tagZ    = '\U000e0061', '\U000e007a'
	tag0, tag9    = '\U000e0030', '\U000e0039'
	firstRegional = '\U0001f1e6' // regional indicators: two make a flag
	lastRegional  = '\U0001f1ff'
)

// oneEmoji reports whether rs is one emoji: elements joined by ZWJs.
func oneEmoji(rs []rune) bool {
	i, ok := emojiElement(rs, 0)
	for ok && i < len(rs) {
		if rs[i] != zwj {
			return false
		}
		i, ok = emojiElement(rs, i+1)
	}
	return ok
}

// emojiElement reads one element of an emoji from rs[i:] and returns where
// it ends.
func emojiElement(rs []rune, i int) (int, bool) {
	if i >= len(rs) {
		return i, false
	}
	at := func(i int, r rune) bool { return i < len(rs) && rs[i] == r }
	switch r := rs[i]; {
	case r >= '0' && r <= '9' || r == '#' || r == '*':
		i++
		if at(i, vs16) {
			i++
		}
		return i + 1, at(i, keycap)
	case isRegional(r):
		return i + 2, i+1 < len(rs) && isRegional(rs[i+1])
	case !isPictograph(r):
		return i, false
	}
	base := rs[i]
	i++
	if at(i, vs15) || at(i, vs16) {
		i++
	}
	// A skin tone modifies the pictograph before it; on its own (or on
	// another tone: isPictograph refuses a tone as a base) it is no emoji.
	if i < len(rs) && isTone(rs[i]) {
		i++
	}
	// Tags spell a subdivision flag after a black flag only, in lower
	// case letters and digits, then their cancel: no hidden text after
	// any other emoji (helper-57's review: 👍 and tags passed).
	if i < len(rs) && rs[i] >= firstTag && rs[i] <= lastTag {
		if base != blackFlag {
			return i, false
		}
		n := 0
		for ; i < len(rs) && (rs[i] >= tagA && rs[i] <= tagZ || rs[i] >= tag0 && rs[i] <= tag9); i++ {
			n++
		}
		return i + 1, n > 0 && at(i, cancelTag)
	}
	return i, true
}

func isTone(r rune) bool { return r >= firstTone && r <= lastTone }

func isRegional(r rune) bool { return r >= firstRegional && r <= lastRegional }

// emojiPunct are emoji that Unicode files under punctuation or letters,
// not symbols: ‼ ⁉ ℹ 〰 〽.
var emojiPunct = map[rune]bool{'\u203c': true, '\u2049': true, '\u2139': true, '\u3030': true, '\u303d': true}

// isPictograph reports whether r may be an emoji's base: a symbol outside
// ASCII (most emoji are "other symbols"; arrows such as ↔ are math
// symbols), or one of emojiPunct.
//
// Not a base, though symbols (helper-57's review): Latin-1's, but © and ®
// (°, ±); math symbols outside the arrows (±, ＋, ∑), since the emoji
// among math symbols are arrows (↔, ⤴); the Braille blank, which draws
// nothing; the object replacement and replacement characters; and a skin
// tone (QA: 🏽 alone modifies nothing, and shows as a bare swatch).
func isPictograph(r rune) bool {
	switch {
	case r < 0x100 && r != '\u00a9' && r != '\u00ae', isRegional(r), isTone(r), r == '\u2800', r == '\ufffc', r == '\ufffd':
		return false
	case unicode.Is(unicode.Sm, r):
		return r >= 0x2190 && r <= 0x21ff || r >= 0x2900 && r <= 0x297f
	}
	return unicode.Is(unicode.So, r) || emojiPunct[r]
}
