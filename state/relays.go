package state

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// MaxRelays is the most circuit relays a group's settings may list.
const MaxRelays = 8

// MaxRelayLen bounds one relay's address, in bytes: a few multiaddrs, as
// `demes relay` prints them.
const MaxRelayLen = 512

// relayScheme is the prefix of a p2p URL, which [NormalizeRelay] accepts
// and drops.
const relayScheme = "p2p:"

// NormalizeRelay returns a relay's address in the one form a settings
// entry carries: its multiaddrs, each ending in the relay's /p2p/ peer id,
// separated by commas, without spaces or a "p2p:" prefix, each written as
// the multiaddr library writes it. It refuses what [CheckRelays] would.
func NormalizeRelay(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), relayScheme)
	var parts []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		a, err := ma.NewMultiaddr(p)
		if err != nil {
			return "", notMultiaddr(p, err)
		}
		parts = append(parts, a.String())
	}
	out := strings.Join(parts, ",")
	if _, err := relayPeer(out); err != nil {
		return "", err
	}
	return out, nil
}

// CheckRelays refuses a list of relays that a settings entry may not carry:
// more than [MaxRelays], one not in the form [NormalizeRelay] gives, one
// whose addresses do not all end in the same /p2p/ peer id, one that is
// itself a circuit address, or the same relay twice.
func CheckRelays(relays []string) error {
	if len(relays) > MaxRelays {
		return fmt.Errorf("a group lists at most %d relays, not %d", MaxRelays, len(relays))
	}
	seen := map[string]bool{}
	for i, r := range relays {
		id, err := relayPeer(r)
		if err != nil {
			return fmt.Errorf("relay %d: %w", i+1, err)
		}
		if seen[id] {
			return fmt.Errorf("relay %d: relay %s is listed twice", i+1, id)
		}
		seen[id] = true
	}
	return nil
}

// relayPeer checks one relay's address, in normal form, and returns the
// peer id its addresses end in.
func relayPeer(r string) (string, error) {
	if r == "" {
		return "", errors.New("empty relay address (pass the last line 'demes relay' printed)")
	}
	if len(r) > MaxRelayLen {
		return "", fmt.Errorf("relay address is %d bytes long, more than %d", len(r), MaxRelayLen)
	}
	id := ""
	for _, p := range strings.Split(r, ",") {
		a, err := ma.NewMultiaddr(p)
		if err != nil {
			return "", notMultiaddr(p, err)
		}
		if a.String() != p {
			return "", fmt.Errorf("relay address %q is not in normal form (%q)", p, a.String())
		}
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			return "", fmt.Errorf("relay address %q is a circuit address: list the relay's own address", p)
		}
		_, last := ma.SplitLast(a)
		if last == nil || last.Protocol().Code != ma.P_P2P || len(a) < 2 {
			return "", fmt.Errorf("relay address %q does not end in the relay's /p2p/ peer id (pass the last line 'demes relay' printed)", p)
		}
		switch v := last.Value(); {
		case id == "":
			id = v
		case v != id:
			return "", fmt.Errorf("relay address %q names two peers, %s and %s: list each relay on its own", r, id, v)
		}
	}
	return id, nil
}

// The multiaddr library's reasons, as it words them (version 0.16): what
// notMultiaddr says in plain words.
var (
	maBadValue   = regexp.MustCompile(`invalid value "([^"]*)" for protocol ([^:\s]+)`)
	maBadProto   = regexp.MustCompile(`unknown protocol (\S+)`)
	maNoProtocol = regexp.MustCompile(`must begin with /`)
)

// notMultiaddr says that p, which the multiaddr library refused with err,
// is not a multiaddr, and which part is wrong where it can tell, in plain
// words rather than the library's (the address is shown to people in the
// CLI and the UI). Where it cannot tell, it says no more than that.
func notMultiaddr(p string, err error) error {
	why := ""
	switch msg := err.Error(); {
	case !strings.HasPrefix(p, "/") || maNoProtocol.MatchString(msg):
		why = ": it does not begin with /"
	case maBadValue.MatchString(msg):
		m := maBadValue.FindStringSubmatch(msg)
		why = fmt.Sprintf(": %q is not a valid %s value", m[1], m[2])
	case maBadProto.MatchString(msg):
		why = fmt.Sprintf(": there is no protocol named %q", maBadProto.FindStringSubmatch(msg)[1])
	}
	return fmt.Errorf("relay address %q is not a multiaddr%s", p, why)
}

// The two encodings of a [SettingsBody]: without relays, the three fields
// every build reads (so that entries and snapshots written before relays
// existed keep their bytes and signatures), and with them, a fourth.
type (
	settingsV1 struct {
		_             struct{} `cbor:",toarray"`
		MembersInvite bool
		MsgsPerMinute uint32
		BytesPerDay   uint64
	}
	settingsV2 struct {
		_             struct{} `cbor:",toarray"`
		MembersInvite bool
		MsgsPerMinute uint32
		BytesPerDay   uint64
		Relays        []string
	}
)

// MarshalCBOR writes the settings as an array of three elements, or of
// four when they list relays.
func (b SettingsBody) MarshalCBOR() ([]byte, error) {
	if len(b.Relays) == 0 {
		return encMode.Marshal(settingsV1{MembersInvite: b.MembersInvite, MsgsPerMinute: b.MsgsPerMinute, BytesPerDay: b.BytesPerDay})
	}
	return encMode.Marshal(settingsV2{MembersInvite: b.MembersInvite, MsgsPerMinute: b.MsgsPerMinute, BytesPerDay: b.BytesPerDay, Relays: b.Relays})
}

// UnmarshalCBOR reads either encoding. A four-element array with no relays
// decodes, but [Decode] refuses it: its canonical form has three.
func (b *SettingsBody) UnmarshalCBOR(data []byte) error {
	if len(data) > 0 && data[0] == 0x84 {
		var v settingsV2
		if err := decMode.Unmarshal(data, &v); err != nil {
			return err
		}
		*b = SettingsBody{MembersInvite: v.MembersInvite, MsgsPerMinute: v.MsgsPerMinute, BytesPerDay: v.BytesPerDay, Relays: v.Relays}
		return nil
	}
	var v settingsV1
	if err := decMode.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = SettingsBody{MembersInvite: v.MembersInvite, MsgsPerMinute: v.MsgsPerMinute, BytesPerDay: v.BytesPerDay}
	return nil
}
