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
	a, c := newHost(b, newSeed(b), Config{}), newHost(b, newSeed(b), Config{})
	benchPost(b, a, c.URL())
}

func BenchmarkPostRelayed(b *testing.B) {
	seedC := newSeed(b)
	r := newHost(b, newSeed(b), Config{RelayFor: func([32]byte) bool { return true }})
	ri := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	a, c := newHost(b, newSeed(b), Config{Relays: []peer.AddrInfo{ri}}), newHost(b, seedC, Config{Relays: []peer.AddrInfo{ri}})
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
