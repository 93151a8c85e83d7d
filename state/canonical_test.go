package state

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// TestCanonicalBodies: every signed body has one encoding. The vectors in
// testdata/state/noncanonical.json are bodies in canonical CBOR (accepted)
// and the same bodies written another way that a lax decoder reads as the
// same value (non-shortest integers and lengths, indefinite lengths, tags,
// extra elements, trailing bytes); Decode refuses the latter.
func TestCanonicalBodies(t *testing.T) {
	raw, err := os.ReadFile("../testdata/state/noncanonical.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Body  string
		Hex   string
		Valid bool
		Why   string
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	bodies := map[string]func() any{
		"checkpoint": func() any { return &CheckpointBody{} },
		"chat":       func() any { return &ChatBody{} },
		"address":    func() any { return &AddressBody{} },
		"settings":   func() any { return &SettingsBody{} },
		"latency":    func() any { return &LatencyBody{} },
	}
	rejected := 0
	for _, v := range vectors {
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Why, err)
		}
		mk, ok := bodies[v.Body]
		if !ok {
			t.Fatalf("%s: unknown body %q", v.Why, v.Body)
		}
		err = Decode(b, mk())
		switch {
		case v.Valid && err != nil:
			t.Errorf("%s %s: refused: %v", v.Body, v.Why, err)
		case !v.Valid && err == nil:
			t.Errorf("%s %s: accepted", v.Body, v.Why)
		case !v.Valid:
			rejected++
			if errors.Is(err, ErrNotCanonical) {
				t.Logf("%s %s: %v", v.Body, v.Why, err)
			}
		}
	}
	if rejected == 0 {
		t.Fatal("no reject vectors")
	}
}
