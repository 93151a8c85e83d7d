package main

import (
	"encoding/json"
	"io"
	"strings"
	"unicode"
)

// writeJSON prints v as the one JSON document of --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clean makes text from other members safe to print on a terminal: control
// characters (escape sequences that could rewrite the screen, carriage
// returns that hide text) become U+FFFD. Newlines are kept, indented by
// indent, so a multi-line message stays visibly one message.
func clean(s, indent string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString("\n" + indent)
		case r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			b.WriteRune(unicode.ReplacementChar)
		case unicode.Is(unicode.Bidi_Control, r):
			// Bidirectional overrides can make text read as something else.
			b.WriteRune(unicode.ReplacementChar)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
