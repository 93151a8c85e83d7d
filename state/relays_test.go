package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/demes/demes/crypto"
)

// Two peer ids of relays (any valid ones do).
const (
	relayA = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	relayB = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
)

// TestRelaySettings: an admin lists relays in the settings and takes them
// out again; a member who is not an admin may not; every malformed list is
// refused and changes nothing.
func TestRelaySettings(t *testing.T) {
	w := newWorld(t, 2)
	w.genesis()
	if r := w.join(1); r.Err != nil {
		t.Fatal(r.Err)
	}
	a, b := w.ids[0], w.ids[1]
	good := []string{
		"/ip4/203.0.113.7/tcp/4001/p2p/" + relayA + ",/ip4/203.0.113.7/udp/4001/quic-v1/p2p/" + relayA,
		"/dns4/relay.example.org/tcp/4001/p2p/" + relayB,
	}
	if r := w.entry(a, crypto.TypeSettings, &SettingsBody{MembersInvite: true, Relays: good}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := w.s.Settings.Relays; !reflect.DeepEqual(got, good) {
		t.Fatalf("relays %q, want %q", got, good)
	}
	before := w.s.Settings
	wantRejected(t, w.entry(b, crypto.TypeSettings, &SettingsBody{Relays: good[:1]}), "only admins")
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = "/ip4/203.0.113.7/tcp/" + string(rune('1'+i)) + "/p2p/" + relayA
	}
	for _, c := range []struct {
		relays []string
		why    string
	}{
		{nine, "at most 8 relays"},
		{[]string{""}, "empty relay address"},
		{[]string{"relay.example.org:4001"}, "not a multiaddr"},
		{[]string{"/ip4/203.0.113.7/tcp/4001"}, "does not end in the relay's /p2p/ peer id"},
		{[]string{"/p2p/" + relayA}, "does not end in the relay's /p2p/ peer id"},
		{[]string{"/ip4/203.0.113.7/tcp/04001/p2p/" + relayA}, "not in normal form"},
		{[]string{"p2p:/ip4/203.0.113.7/tcp/4001/p2p/" + relayA}, "not a multiaddr"},
		{[]string{"/ip4/203.0.113.7/tcp/4001/p2p/" + relayA + "/p2p-circuit/p2p/" + relayB}, "circuit address"},
		{[]string{"/ip4/203.0.113.7/tcp/4001/p2p/" + relayA + ",/ip4/203.0.113.8/tcp/4001/p2p/" + relayB}, "names two peers"},
		{[]string{"/ip4/203.0.113.7/tcp/4001/p2p/" + relayA, "/ip4/203.0.113.8/tcp/4001/p2p/" + relayA}, "listed twice"},
		{[]string{"/ip4/203.0.113.7/tcp/4001/p2p/" + strings.Repeat("x", 600)}, "more than 512"},
	} {
		wantRejected(t, w.entry(a, crypto.TypeSettings, &SettingsBody{Relays: c.relays}), c.why)
		if !reflect.DeepEqual(w.s.Settings, before) {
			t.Fatalf("refused settings (%s) changed them: %+v", c.why, w.s.Settings)
		}
	}
	// The relays survive a snapshot.
	snap, err := w.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Restore(w.group, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Settings, before) {
		t.Fatalf("restored settings %+v, want %+v", back.Settings, before)
	}
	// Settings without relays take them out.
	if r := w.entry(a, crypto.TypeSettings, &SettingsBody{MembersInvite: true}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := w.s.Settings.Relays; got != nil {
		t.Fatalf("relays %q after settings without any", got)
	}
}

// TestNormalizeRelay: a relay's address as a person pastes it (the p2p URL
// prefix, spaces) becomes the one form an entry carries.
func TestNormalizeRelay(t *testing.T) {
	want := "/ip4/203.0.113.7/tcp/4001/p2p/" + relayA + ",/ip4/203.0.113.7/udp/4001/quic-v1/p2p/" + relayA
	got, err := NormalizeRelay(" p2p:/ip4/203.0.113.7/tcp/04001/p2p/" + relayA + " , /ip4/203.0.113.7/udp/4001/quic-v1/p2p/" + relayA + "\n")
	if err != nil || got != want {
		t.Fatalf("NormalizeRelay: %q, %v; want %q", got, err, want)
	}
	if _, err := NormalizeRelay("/ip4/203.0.113.7/tcp/4001"); err == nil {
		t.Fatal("NormalizeRelay took an address without a peer id")
	}
}

// TestNormalizeRelayErrors: an address that does not parse is refused in
// plain words, with the part that is wrong, not the multiaddr library's text.
func TestNormalizeRelayErrors(t *testing.T) {
	for in, want := range map[string]string{
		"garbage":                    `relay address "garbage" is not a multiaddr: it does not begin with /`,
		"relay.example.org:4001":     `relay address "relay.example.org:4001" is not a multiaddr: it does not begin with /`,
		"/ip4/1.2.3/tcp/1":           `relay address "/ip4/1.2.3/tcp/1" is not a multiaddr: "1.2.3" is not a valid ip4 value`,
		"/ip4/1.2.3.4/tpc/1":         `relay address "/ip4/1.2.3.4/tpc/1" is not a multiaddr: there is no protocol named "tpc"`,
		"/ip4/1.2.3.4/tcp/1/p2p/xyz": `relay address "/ip4/1.2.3.4/tcp/1/p2p/xyz" is not a multiaddr: "xyz" is not a valid p2p value`,
	} {
		_, err := NormalizeRelay(in)
		if err == nil || err.Error() != want {
			t.Errorf("NormalizeRelay(%q): %v; want %s", in, err, want)
		}
	}
}

// TestSettingsEncoding: settings without relays encode as they did before
// relays existed (three elements: the bytes, and so the signatures, of old
// entries and snapshots are unchanged); with relays, as four; four elements
// with no relays are not canonical.
func TestSettingsEncoding(t *testing.T) {
	old, err := Encode(&SettingsBody{MembersInvite: true})
	if err != nil || hex.EncodeToString(old) != "83f50000" {
		t.Fatalf("settings without relays encode as %x, %v; want 83f50000", old, err)
	}
	var b SettingsBody
	if err := Decode(old, &b); err != nil || b.Relays != nil || !b.MembersInvite {
		t.Fatalf("old settings decode as %+v, %v", b, err)
	}
	with := &SettingsBody{MembersInvite: true, Relays: []string{"/ip4/203.0.113.7/tcp/4001/p2p/" + relayA}}
	enc, err := Encode(with)
	if err != nil || enc[0] != 0x84 || !bytes.HasPrefix(enc[1:], old[1:]) {
		t.Fatalf("settings with relays encode as %x, %v", enc, err)
	}
	var back SettingsBody
	if err := Decode(enc, &back); err != nil || !reflect.DeepEqual(&back, with) {
		t.Fatalf("settings with relays decode as %+v, %v", back, err)
	}
	if err := Decode([]byte{0x84, 0xf5, 0, 0, 0x80}, &back); !errors.Is(err, ErrNotCanonical) {
		t.Fatalf("four elements with no relays: %v, want ErrNotCanonical", err)
	}
}
