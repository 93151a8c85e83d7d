// Package simnet is an in-process network for tests and benchmarks: nodes
// register a handler under their URL and post frames to each other through
// it, with per-link latency, jitter, loss, duplication, partitions (one-way
// too) and crashed endpoints. Faults are decided by a seeded random source, so
// a schedule can be replayed.
package simnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"syscall"
	"time"
)

// Handler receives a frame and returns the answer, like a peer listener.
type Handler func(ctx context.Context, frame []byte) ([]byte, error)

// LinkConfig describes one direction of a link.
type LinkConfig struct {
	Latency time.Duration // one-way delay
	Jitter  float64       // +/- fraction of Latency, uniformly random
	Drop    float64       // probability that a request is lost
	Dup     float64       // probability that a request is delivered twice
}

// ErrUnreachable is returned for a post across a partition or to a crashed
// endpoint.
var ErrUnreachable = errors.New("simnet: unreachable")

// ErrRefused is returned for a post to a crashed endpoint: as on a real
// network, where the machine of a dead process refuses the connection, it
// is also syscall.ECONNREFUSED (and ErrUnreachable). A post across a
// partition gets ErrUnreachable alone, as a timeout would say nothing more.
var ErrRefused = fmt.Errorf("%w: connection refused: %w", ErrUnreachable, syscall.ECONNREFUSED)

// Network is the simulated network. It is safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	rng      *rand.Rand
	handlers map[string]Handler
	links    map[[2]string]LinkConfig
	cut      map[[2]string]bool
	down     map[string]bool
	held     map[string]chan struct{} // closed when the endpoint is released
	def      LinkConfig
	posts    int64
	tap      func(from, to string, frame []byte)
	wg       sync.WaitGroup
}

// SetTap sets a function that sees a copy of every frame posted, for tests
// that capture traffic to replay or tamper with it.
func (n *Network) SetTap(tap func(from, to string, frame []byte)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.tap = tap
}

// New returns a network whose faults follow seed, with def for every link
// not configured otherwise.
func New(seed int64, def LinkConfig) *Network {
	return &Network{
		rng:      rand.New(rand.NewSource(seed)),
		handlers: map[string]Handler{},
		links:    map[[2]string]LinkConfig{},
		cut:      map[[2]string]bool{},
		down:     map[string]bool{},
		held:     map[string]chan struct{}{},
		def:      def,
	}
}

// Register makes url reachable, answered by h (replacing any earlier handler,
// as a restarted node does).
func (n *Network) Register(url string, h Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handlers[url] = h
	delete(n.down, url)
}

// Crash makes url unreachable in both directions until Register is called again.
func (n *Network) Crash(url string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[url] = true
	delete(n.handlers, url)
}

// SetLink configures the direction from -> to.
func (n *Network) SetLink(from, to string, c LinkConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.links[[2]string{from, to}] = c
}

// SetDefault changes the configuration of links not set with SetLink.
func (n *Network) SetDefault(c LinkConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.def = c
}

// Cut breaks the direction from -> to (a one-way partition).
func (n *Network) Cut(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{from, to}] = true
}

// Partition cuts every link between the two sides, both ways.
func (n *Network) Partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			n.Cut(x, y)
			n.Cut(y, x)
		}
	}
}

// Heal removes every cut.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]string]bool{}
}

// Hold makes every post to or from url wait until Release(url), or until
// the post's context ends: as when a machine stands still (its process
// stopped, its laptop asleep) or its cable is pulled with the connections
// left open, and TCP delivers what waited once it is back. Nothing is
// refused or lost; the answer to a post delivered before the hold waits
// too.
func (n *Network) Hold(url string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held[url] == nil {
		n.held[url] = make(chan struct{})
	}
}

// Release delivers what waits for url (see Hold) and lets new posts through.
func (n *Network) Release(url string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch := n.held[url]; ch != nil {
		close(ch)
		delete(n.held, url)
	}
}

// waitHeld waits while from or to is held (see Hold).
func (n *Network) waitHeld(ctx context.Context, from, to string) error {
	for {
		n.mu.Lock()
		ch := n.held[from]
		if ch == nil {
			ch = n.held[to]
		}
		n.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Posts returns how many posts were attempted, for benchmarks.
func (n *Network) Posts() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.posts
}

// Wait waits for duplicated deliveries still in flight.
func (n *Network) Wait() { n.wg.Wait() }

// Endpoint returns the link a node at url posts through.
func (n *Network) Endpoint(url string) *Endpoint { return &Endpoint{net: n, from: url} }

// Endpoint is one node's access to the network; it implements node.Link.
type Endpoint struct {
	net  *Network
	from string
}

type decision struct {
	h         Handler
	tap       func(from, to string, frame []byte)
	there     time.Duration
	back      time.Duration
	drop, dup bool
	dupDelay  time.Duration
}

func (n *Network) decide(from, to string, frame []byte) (decision, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.posts++
	h := n.handlers[to]

	if n.down[from] || n.cut[[2]string{from, to}] {
		return decision{}, ErrUnreachable
	}
	if h == nil || n.down[to] {
		return decision{}, ErrRefused
	}
	there, ok := n.links[[2]string{from, to}]
	if !ok {
		there = n.def
	}
	back, ok := n.links[[2]string{to, from}]
	if !ok {
		back = n.def
	}
	d := decision{h: h, tap: n.tap, there: n.delay(there), back: n.delay(back)}
	d.drop = there.Drop > 0 && n.rng.Float64() < there.Drop
	d.dup = there.Dup > 0 && n.rng.Float64() < there.Dup
	d.dupDelay = n.delay(there) * 2
	if n.cut[[2]string{to, from}] {
		d.back = -1 // the answer is lost
	}
	return d, nil
}

func (n *Network) delay(c LinkConfig) time.Duration {
	if c.Latency <= 0 {
		return 0
	}
	f := 1.0
	if c.Jitter > 0 {
		f += (n.rng.Float64()*2 - 1) * c.Jitter
	}
	return time.Duration(float64(c.Latency) * f)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Post delivers frame to the node registered at url, after the link's delay,
// and returns its answer after the delay back.
func (e *Endpoint) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	if err := e.net.waitHeld(ctx, e.from, url); err != nil {
		return nil, err
	}
	d, err := e.net.decide(e.from, url, frame)
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, d.there); err != nil {
		return nil, err
	}
	if d.drop {
		return nil, ErrUnreachable
	}
	if d.dup {
		cp := append([]byte(nil), frame...)
		e.net.wg.Add(1)
		go func() {
			defer e.net.wg.Done()
			time.Sleep(d.dupDelay)
			_, _ = d.h(context.Background(), cp)
		}()
	}
	resp, err := d.h(ctx, frame)
	if err == nil && d.tap != nil {
		d.tap(e.from, url, append([]byte(nil), frame...))
	}
	if d.back < 0 {
		return nil, ErrUnreachable
	}
	// The answer, too, waits while either end is held.
	if herr := e.net.waitHeld(ctx, e.from, url); herr != nil {
		return nil, herr
	}
	if serr := sleep(ctx, d.back); serr != nil {
		return nil, serr
	}
	return resp, err
}
