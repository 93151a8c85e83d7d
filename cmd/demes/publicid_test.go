package main

import (
	"strings"
	"testing"
)

// TestPublicIDArg: every way a public id can be wrong is said in plain
// words, without the bech32 decoder's terms.
func TestPublicIDArg(t *testing.T) {
	good := alice.String()
	typo := []byte(good)
	typo[30] = map[bool]byte{true: 'p', false: 'q'}[typo[30] == 'q']
	for in, want := range map[string]string{
		"demes1nope":                `"demes1nope" is not a valid member id: it is 10 characters long; a public id is 115`,
		"age1xyz":                   `"age1xyz" is not a valid member id: it does not start with "demes1"`,
		string(typo):                `is not a valid member id: its checksum does not match: a character in it was mistyped`,
		good[:30] + "o" + good[31:]: `is not a valid member id: it holds "o", which no public id has`,
		good[:6] + strings.ToUpper(good[6:9]) + good[9:]: `is not a valid member id: it mixes upper- and lower-case letters`,
	} {
		_, err := parsePublicIDArg(in, "member id")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %s", in, err, want)
		}
		for _, raw := range []string{"separator", "position", "parse public id", "wrong length", "bech32"} {
			if err != nil && strings.Contains(err.Error(), raw) {
				t.Errorf("%q: %v says %q", in, err, raw)
			}
		}
	}
	if pub, err := parsePublicIDArg(" "+good+"\n", "member id"); err != nil || pub != alice {
		t.Errorf("a good id with spaces around it: %v, %v", pub, err)
	}
}
