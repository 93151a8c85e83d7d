package node

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// oldInviteCode is an invite code made by a node from before invite codes
// carried relays (a six-element body), from the identities below, for
// group {7}, at index 5, expiring in 2100.
const oldInviteCode = "demes-invite-AYJuegWeRqVeMX1pPeE7WXovzbYnTiLH2HR8kcU8OY_tZTSeNgrUnV2XhKAI-X0lqxL_ybWv0mczM2uyFUL3W7vebVteLCAaN3TrYyit9TCBeXwT76k--Iw7-B-qhPpWC4YRUAcAAAAAAAAAAAAAAAAAAABYIHEcNctgCAgQ-2PxRsg7d1JLsBy33MAauwiqsk_NrG3iAxs47s_PVqYAAFiyhmRjbHViWEBxHDXLYAgIE" +
	"Ptj8UbIO3dSS7Act9zAGrsIqrJPzaxt4hpVcaREWnQIPQIz6mwbdxnKkalH4p7YJjlbnHLTeCkCWECCbnoFnkalXjF9aT3hO1l6L822J04ix9h0fJHFPDmP7e5lqXmc7VmhuD5fTB21PZRxkRfma36_Ap57h2vlj7xfgXgbaHR0cDovL2ludml0ZXIuaW52YWxpZDo3OTQ2BRs47s_PVqYAAA"

func inviteIDs(t testing.TB) (inviter, invitee *identity.Identity) {
	t.Helper()
	a, err := identity.FromSeed(bytes.Repeat([]byte{0x61}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.FromSeed(bytes.Repeat([]byte{0x62}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// signedCode signs body as an invite code from inviter to invitee.
func signedCode(t testing.TB, inviter, invitee *identity.Identity, body []byte) string {
	t.Helper()
	frame, err := crypto.Sign(inviter, &crypto.Envelope{Type: crypto.TypeInvite, Group: crypto.GroupID{7}, To: invitee.Public().Sign, Counter: 3, Time: 4102444800e9, Payload: body})
	if err != nil {
		t.Fatal(err)
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(frame)
}

// TestInviteCodeRelays: a code made in a group whose settings list relays
// carries them, and reads back with them; a code without relays is encoded
// as before relays (six elements), and a code from before relays still
// parses, with none. A seven-element body with no relays (not the one
// encoding of the code) and a code naming a relay that is not a relay's
// address are refused.
func TestInviteCodeRelays(t *testing.T) {
	inviter, invitee := inviteIDs(t)
	old := inviteCodeV1{GroupName: "club", Invitee: invitee.Public().Bytes(), Inviter: inviter.Public().Bytes(),
		URLs: []string{"http://inviter.invalid:7946"}, Index: 5, Expires: 4102444800e9}
	oldBody, err := state.Encode(old)
	if err != nil {
		t.Fatal(err)
	}
	if got := signedCode(t, inviter, invitee, oldBody); got != oldInviteCode {
		t.Logf("the old code: %s", got)
	}
	inv, err := ParseInvite(oldInviteCode)
	if err != nil {
		t.Fatalf("a code from before relays: %v", err)
	}
	if inv.GroupName != "club" || inv.Index != 5 || !slices.Equal(inv.URLs, old.URLs) || inv.Inviter != inviter.Public() || len(inv.Relays) != 0 {
		t.Fatalf("a code from before relays reads as %+v", inv)
	}
	// Without relays, the encoding is the old one, byte for byte.
	none, err := state.Encode(&inviteCode{GroupName: old.GroupName, Invitee: old.Invitee, Inviter: old.Inviter, URLs: old.URLs, Index: old.Index, Expires: old.Expires})
	if err != nil || !bytes.Equal(none, oldBody) {
		t.Fatalf("a code without relays encodes as %x (%v), want the old %x", none, err, oldBody)
	}

	relay := "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWGRUVh7DBUtLKRuTXbgDbKYXwPnRaqcHsGKy8ZYjCVVBZ"
	relay, err = state.NormalizeRelay(relay)
	if err != nil {
		t.Fatal(err)
	}
	body, err := state.Encode(&inviteCode{GroupName: old.GroupName, Invitee: old.Invitee, Inviter: old.Inviter, URLs: old.URLs, Index: old.Index, Expires: old.Expires, Relays: []string{relay}})
	if err != nil || body[0] != 0x87 {
		t.Fatalf("a code with relays encodes as %x (%v), want a seven-element array", body, err)
	}
	inv, err = ParseInvite(signedCode(t, inviter, invitee, body))
	if err != nil || !slices.Equal(inv.Relays, []string{relay}) {
		t.Fatalf("a code with a relay reads as %+v (%v)", inv, err)
	}

	empty, err := state.Encode(inviteCodeWire{GroupName: old.GroupName, Invitee: old.Invitee, Inviter: old.Inviter, URLs: old.URLs, Index: old.Index, Expires: old.Expires})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseInvite(signedCode(t, inviter, invitee, empty)); err == nil {
		t.Error("a seven-element code with no relays parsed")
	}
	bad, err := state.Encode(inviteCodeWire{GroupName: old.GroupName, Invitee: old.Invitee, Inviter: old.Inviter, URLs: old.URLs, Index: old.Index, Expires: old.Expires, Relays: []string{"/ip4/192.0.2.1/tcp/4001"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseInvite(signedCode(t, inviter, invitee, bad)); err == nil || !strings.Contains(err.Error(), "relay") {
		t.Errorf("a code with a relay address without a peer id: %v, want refused for its relay", err)
	}
}
