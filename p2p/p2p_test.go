package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const testMaxFrame = 1 << 20

func newSeed(t testing.TB) []byte {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func signKeyOf(seed []byte) [32]byte {
	return [32]byte(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

// newHost starts a host on loopback that answers every frame with "echo:"
// and the frame, until the test ends.
func newHost(t testing.TB, seed []byte, cfg Config) *Host {
	t.Helper()
	cfg.Seed, cfg.MaxFrame = seed, testMaxFrame
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetHandler(func(_ context.Context, _ string, _ int64, body io.Reader) (int, []byte) {
		b, err := io.ReadAll(body)
		if err != nil {
			return 400, nil
		}
		if bytes.HasPrefix(b, []byte("refuse")) {
			return 403, []byte("rejected")
		}
		return 200, append([]byte("echo:"), b...)
	})
	return h
}

func post(t *testing.T, from *Host, url string, frame string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return from.Post(ctx, url, []byte(frame))
}

// The peer id is the identity key's: an invite to a public key names the
// peer that must answer, and the host's id is that one.
func TestPeerIDIsTheIdentityKey(t *testing.T) {
	seed := newSeed(t)
	h := newHost(t, seed, Config{})
	id, err := PeerID(signKeyOf(seed))
	if err != nil {
		t.Fatal(err)
	}
	if h.ID() != id {
		t.Fatalf("host id %s, PeerID of its key %s", h.ID(), id)
	}
	k, ok := SignKey(id)
	if !ok || k != signKeyOf(seed) {
		t.Fatalf("SignKey(%s) = %x, %v; want the identity key", id, k, ok)
	}
	// A fixed key gives a fixed id: the "12D3KooW" ids of every libp2p.
	var zero [32]byte
	zero[0] = 1
	got, err := PeerID(signKeyOf(zero[:]))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got.String(), "12D3KooW") {
		t.Fatalf("peer id %s is not an ed25519 identity id", got)
	}
}

func TestURLRoundTrip(t *testing.T) {
	seed := newSeed(t)
	id, _ := PeerID(signKeyOf(seed))
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001"), ma.StringCast("/ip4/10.0.0.1/udp/4001/quic-v1")}
	u := FormatURL(id, addrs)
	info, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || len(info.Addrs) != 2 || !info.Addrs[0].Equal(addrs[0]) {
		t.Fatalf("ParseURL(%s) = %v", u, info)
	}
	other, _ := PeerID(signKeyOf(newSeed(t)))
	for _, bad := range []string{
		"http://10.0.0.1:7946",
		"p2p:",
		"p2p:/ip4/10.0.0.1/tcp/4001",
		"p2p:/ip4/10.0.0.1/tcp/4001/p2p/" + id.String() + ",/ip4/10.0.0.2/tcp/4001/p2p/" + other.String(),
	} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted it", bad)
		}
	}
	many := make([]ma.Multiaddr, 40)
	for i := range many {
		many[i] = addrs[0]
	}
	if u := FormatURL(id, many); len(u) > maxURL {
		t.Fatalf("FormatURL made %d bytes, over the %d an address update carries", len(u), maxURL)
	}
}

// Frames go both ways over the streams, one after another on a reused
// stream; a refusal comes back as a StatusError with the peer's code.
func TestPostAnswersAndRefusals(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	for i := 0; i < 3; i++ {
		got, err := post(t, a, b.URL(), "hello")
		if err != nil || string(got) != "echo:hello" {
			t.Fatalf("post %d: %q, %v", i, got, err)
		}
	}
	_, err := post(t, a, b.URL(), "refuse me")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode() != 403 {
		t.Fatalf("refused frame: %v, want a 403 StatusError", err)
	}
	if got, err := post(t, a, b.URL(), "again"); err != nil || string(got) != "echo:again" {
		t.Fatalf("after a refusal: %q, %v", got, err)
	}
	if got, err := post(t, b, a.URL(), "back"); err != nil || string(got) != "echo:back" {
		t.Fatalf("the other way: %q, %v", got, err)
	}
}

// Attack: an address that claims to be a member's but is another peer's
// (a DNS or address-update lie). libp2p's handshake checks the peer id the
// URL names, so nothing is sent to the impostor.
func TestImpostorAtMemberAddressIsRefused(t *testing.T) {
	a, impostor := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	member, _ := PeerID(signKeyOf(newSeed(t)))
	got, err := post(t, a, FormatURL(member, impostor.Addrs()), "secret")
	if err == nil {
		t.Fatalf("a frame for the member reached the impostor, which answered %q", got)
	}
}

// A frame over the limit is refused by its length, unread.
func TestOversizedFrameRefused(t *testing.T) {
	a, b := newHost(t, newSeed(t), Config{}), newHost(t, newSeed(t), Config{})
	if _, err := post(t, a, b.URL(), strings.Repeat("x", testMaxFrame+1)); err == nil {
		t.Fatal("an oversized frame was sent")
	}
	// The sender checks its own limit; a peer with a larger one meets the
	// receiver's check.
	big := newHost(t, newSeed(t), Config{})
	big.cfg.MaxFrame = 4 * testMaxFrame
	_, err := post(t, big, b.URL(), strings.Repeat("x", testMaxFrame+1))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 413 {
		t.Fatalf("oversized frame: %v, want 413", err)
	}
}

// Two peers that know each other only by their circuit addresses reach
// each other through a relay that admits them; the relay admits no one
// else (attack: a stranger asks for a slot, or to be connected through it).
func TestRelayForMembersOnly(t *testing.T) {
	seedA, seedB, seedX := newSeed(t), newSeed(t), newSeed(t)
	members := map[[32]byte]bool{signKeyOf(seedA): true, signKeyOf(seedB): true}
	r := newHost(t, newSeed(t), Config{RelayFor: func(k [32]byte) bool { return members[k] }})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	a := newHost(t, seedA, Config{Relays: []peer.AddrInfo{ri}})
	b := newHost(t, seedB, Config{Relays: []peer.AddrInfo{ri}})
	x := newHost(t, seedX, Config{Relays: []peer.AddrInfo{ri}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if a.WaitRelays(ctx) != 1 || b.WaitRelays(ctx) != 1 {
		t.Fatal("members got no slot on the relay")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if x.WaitRelays(short) != 0 {
		t.Fatal("the relay gave a stranger a slot")
	}
	circuit := func(h *Host) string {
		u := h.CircuitURL()
		if u == "" {
			t.Fatalf("%s has no circuit address", h.ID())
		}
		return u
	}
	got, err := post(t, a, circuit(b), "through the relay")
	if err != nil || string(got) != "echo:through the relay" {
		t.Fatalf("member to member through the relay: %q, %v", got, err)
	}
	if _, err := post(t, x, circuit(b), "let me in"); err == nil {
		t.Fatal("a stranger reached a member through the relay")
	}
}

// A peer whose process is gone is noticed at once: its connection's end is
// reported (OnPeerDown), and a dial to it is refused (ECONNREFUSED), which
// is what lets the host's best backup take over without waiting for
// raft's election timeout (node/gone.go).
func TestGonePeerIsReported(t *testing.T) {
	seedB := newSeed(t)
	a := newHost(t, newSeed(t), Config{})
	b, err := New(Config{Seed: seedB, Listen: "127.0.0.1:0", MaxFrame: testMaxFrame})
	if err != nil {
		t.Fatal(err)
	}
	b.SetHandler(func(context.Context, string, int64, io.Reader) (int, []byte) { return 200, nil })
	down := make(chan [32]byte, 4)
	a.OnPeerDown(func(k [32]byte) { down <- k })
	url := b.URL()
	if _, err := post(t, a, url, "hello"); err != nil {
		t.Fatal(err)
	}
	if p := a.Path(signKeyOf(seedB)); p != "direct" {
		t.Fatalf("path %q, want direct", p)
	}
	b.Close()
	select {
	case k := <-down:
		if k != signKeyOf(seedB) {
			t.Fatalf("OnPeerDown named %x", k)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no OnPeerDown within 30 s of the peer's end")
	}
	_, err = post(t, a, url, "anyone there?")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("post to a gone peer: %v, want a refused connection", err)
	}
}
