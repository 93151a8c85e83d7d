package content

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckReaction(t *testing.T) {
	for _, e := range []string{
		"👍", "❤️", "❤", "😂", "🎉", "🔥",
		"👍🏽",       // skin tone
		"👩‍💻",      // ZWJ sequence
		"👨‍👩‍👧‍👦",  // a family: four joined
		"🏳️‍🌈",     // presentation selector, then ZWJ
		"❤️‍🔥",     // the same
		"🧑🏿‍🤝‍🧑🏻",  // tones inside a ZWJ sequence
		"🇫🇷", "🇺🇦", // flags: pairs of regional indicators
		"\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", // a subdivision flag: tags and their cancel
		"1️⃣", "#️⃣", "*⃣", // keycaps
		"‼️", "⁉", "ℹ️", "〽️", "©️", "™", "↔️", "⭐", "✅", "☕",
		"⤴️", "➕", "®", "👁️‍🗨️", "🐦‍🔥", "🏃🏽‍♀️‍➡️",
	} {
		if err := CheckReaction(e); err != nil {
			t.Errorf("CheckReaction(%q) = %v, want nil", e, err)
		}
		if err := CheckEmoji(e); err != nil {
			t.Errorf("CheckEmoji(%q) = %v: what this node sends, every node must accept", e, err)
		}
	}
	for _, e := range []string{
		"", "ok", "+1", "OK👍", "👍ok", "a", "é", "я", "中", "x️",
		"1", "42", "#", "1️", // digits, and a keycap without its cap
		"👍 ", " 👍", "👍 👍", "\t", "\u00a0", // spaces
		"👍\n", "\x00", "\u202e👍", // controls, a bidi override
		"!", "?", ".", ":)", "<3", "-", // ASCII punctuation
		"👍👍", "🔥🎉", // two emoji
		"🇫", "🇫🇷🇺", // half a flag
		"👍\u200d",     // a joiner with nothing after it
		"\u200d👍",     // nor before
		"\ufe0f",      // a selector alone
		"🏴\U000e0067", // tags without their cancel
		"e\u0301",     // a letter with a combining accent
		strings.Repeat("👍", 9),
		"\xff",
		// helper-57's review: a tone on a tone, hidden tags after an
		// emoji, tags in capitals, blanks and replacement characters,
		// math and Latin-1 symbols.
		"🏻🏻", "👍\U000e0068\U000e0069\U000e007f", "🏴\U000e0047\U000e0042\U000e007f", "🏴\U000e007f",
		"\u2800", "\ufffc", "\ufffd", "±", "＋", "∑", "°",
		// QA: a skin tone on its own modifies nothing, so it is no
		// emoji; and what is sent is checked as given, never trimmed:
		// a space before or after is refused, not dropped.
		"🏻", "🏽", "🏿", "🏽\ufe0f", "🏽\u200d👍", " 👍", "👍 ", " 👍 ", "\u3000👍",
	} {
		err := CheckReaction(e)
		if !errors.Is(err, ErrNotEmoji) || !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckReaction(%q) = %v, want ErrNotEmoji", e, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "a reaction is one emoji, such as 👍; ") {
			t.Errorf("CheckReaction(%q): %q", e, err)
		}
	}
	// One emoji too long for the format is refused for that, in words.
	kiss := "👩🏻\u200d❤️\u200d💋\u200d👨🏼"
	if err := CheckReaction(kiss); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotEmoji) || !strings.Contains(err.Error(), "at most 32") {
		t.Errorf("CheckReaction(%q) = %v, want that it is one emoji over 32 bytes", kiss, err)
	}
	if got, want := CheckReaction("ok").Error(), `a reaction is one emoji, such as 👍; "ok" is not one`; got != want {
		t.Errorf("CheckReaction(ok) = %q, want %q", got, want)
	}
}
