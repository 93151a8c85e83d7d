package p2p

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The cost of one frame's round trip (1 KiB each way, as a batch of raft
// messages) on loopback: over a direct libp2p stream, through a relay, and
// over HTTP for comparison (the transport the node used before).
//
//	go test -run '^$' -bench Post -benchtime 2000x ./p2p/

var benchFrame = bytes.Repeat([]byte("x"), 1024)

func BenchmarkPostDirect(b *testing.B) {
	sa, sc := make([]byte, 32), make([]byte, 32)
	sa[0], sc[0] = 3, 4
	a, c := newBenchHosts(b, sa, sc, Config{}, Config{})
	benchPost(b, a, c.URL())
}

func BenchmarkPostRelayed(b *testing.B) {
	seedA, seedC := make([]byte, 32), make([]byte, 32)
	seedA[0], seedC[0] = 1, 2
	r, err := New(Config{Seed: make([]byte, 32), Listen: "127.0.0.1:0", MaxFrame: testMaxFrame, RelayFor: func([32]byte) bool { return true }})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	a, c := newBenchHosts(b, seedA, seedC, Config{Relays: []peer.AddrInfo{ri}}, Config{Relays: []peer.AddrInfo{ri}})
	ctx := context.Background()
	if a.WaitRelays(ctx) != 1 || c.WaitRelays(ctx) != 1 {
		b.Fatal("no relay slot")
	}
	// Only the circuit address: hole punching is off on loopback (both
	// hosts see each other's real addresses only through identify).
	benchPost(b, a, c.CircuitURL())
	if p := a.Path(signKeyOf(seedC)); p != "relayed" {
		b.Logf("path after the run: %q (a direct connection was made)", p)
	}
}

func BenchmarkPostHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	defer srv.Close()
	client := srv.Client()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(srv.URL, "application/octet-stream", bytes.NewReader(benchFrame))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// newBenchHosts starts two echoing hosts on loopback.
func newBenchHosts(b *testing.B, sa, sc []byte, ca, cc Config) (*Host, *Host) {
	mk := func(seed []byte, cfg Config) *Host {
		cfg.Seed, cfg.MaxFrame, cfg.Listen = seed, testMaxFrame, "127.0.0.1:0"
		h, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { h.Close() })
		h.SetHandler(func(_ context.Context, _ string, _ int64, body io.Reader) (int, []byte) {
			out, _ := io.ReadAll(body)
			return 200, out
		})
		return h
	}
	return mk(sa, ca), mk(sc, cc)
}

func benchPost(b *testing.B, from *Host, url string) {
	ctx := context.Background()
	if _, err := from.Post(ctx, url, benchFrame); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := from.Post(ctx, url, benchFrame); err != nil {
			b.Fatal(err)
		}
	}
}
