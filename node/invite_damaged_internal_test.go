package node

import (
	"strings"
	"testing"
)

// TestParseInviteDamaged: a code damaged on its way (a character changed,
// one that no code has put in, cut short) is refused in plain words that
// say what to do, not in the words of the base64 or envelope decoder.
func TestParseInviteDamaged(t *testing.T) {
	if _, err := ParseInvite(oldInviteCode); err != nil {
		t.Fatalf("the intact code: %v", err)
	}
	mid := len(InvitePrefix) + (len(oldInviteCode)-len(InvitePrefix))/2
	changed := []byte(oldInviteCode)
	if changed[mid] == 'A' {
		changed[mid] = 'B'
	} else {
		changed[mid] = 'A'
	}
	for _, tc := range []struct{ name, code, want string }{
		{"a character changed", string(changed), "not the code the inviter signed"},
		{"a character no code has", oldInviteCode[:mid] + "!" + oldInviteCode[mid:], `it holds '!', which no invite code has`},
		{"a space inside", oldInviteCode[:mid] + " " + oldInviteCode[mid:], `it holds ' ', which no invite code has`},
		{"cut, one character over a whole block", oldInviteCode[:mid+1-(mid-len(InvitePrefix))%4], "characters are missing from it, or were added"},
		{"cut at a whole block", oldInviteCode[:mid-(mid-len(InvitePrefix))%4], "not the code the inviter signed"},
		{"the prefix alone", InvitePrefix, "not the code the inviter signed"},
	} {
		_, err := ParseInvite(tc.code)
		if err == nil {
			t.Errorf("%s: parsed", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "copy the whole code again") || !strings.Contains(msg, "ask the inviter for a new one") {
			t.Errorf("%s: %q, want it to say %q and what to do", tc.name, msg, tc.want)
		}
		for _, lib := range []string{"illegal", "input byte", "base64", "envelope", "verify", "signature:"} {
			if strings.Contains(msg, lib) {
				t.Errorf("%s: %q has the decoder's words %q", tc.name, msg, lib)
			}
		}
	}
}
