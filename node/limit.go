package node

import (
	"net"
	"sync"
	"time"
)

// Limits of the peer listener against strangers (issue 15, item 11). A
// request that fails before its signer is known to be anyone (junk, a bad
// signature, a key that is no member's or invitee's, an oversized body)
// costs its source address a token; a source without tokens is answered 429
// at once, its body unread and its connection closed, until the bucket
// refills. Members' requests are not rate-limited here: their frames pass
// the checks, and what they may put in the log is bounded by their quota.
// An honest node behind the same address as an attacker (a shared NAT) is
// refused along with it while the attacker floods; it gets through again
// once the attacker stops.
const (
	// sourceBurst is how many failed requests a source may make at once,
	// sourceRate how many a second after that. An honest member's node
	// fails a few while it joins (the host's messages arrive before the
	// join reply tells it who the members are); a stranger flooding is
	// down to sourceRate within a burst.
	sourceBurst = 64
	sourceRate  = 8
	// maxSources bounds the addresses tracked. Beyond it, idle ones are
	// forgotten; if none is idle, new addresses share one bucket.
	maxSources = 4096
)

// sourceLimiter is a token bucket per source address (per /64 for IPv6:
// one host usually has a whole /64). It is safe for concurrent use.
type sourceLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimiter() *sourceLimiter { return &sourceLimiter{buckets: map[string]*bucket{}} }

// sourceOf returns the key of the address a request came from (its
// http.Request.RemoteAddr).
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// refill brings b's tokens up to now.
func (b *bucket) refill(now time.Time) {
	b.tokens = min(sourceBurst, b.tokens+now.Sub(b.last).Seconds()*sourceRate)
	b.last = now
}

// allow reports whether src has a token left. It takes none: only a
// failure does (charge).
func (l *sourceLimiter) allow(src string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil && len(l.buckets) >= maxSources-1 {
		b = l.buckets[""] // the table is full: charge would use this one
	}
	if b == nil {
		return true
	}
	b.refill(now)
	return b.tokens >= 1
}

// charge takes a token from src for a failed request.
func (l *sourceLimiter) charge(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		// One place is kept for the shared bucket.
		if len(l.buckets) >= maxSources-1 {
			l.sweep(now)
		}
		if len(l.buckets) >= maxSources-1 {
			src = ""
		}
		if b = l.buckets[src]; b == nil {
			b = &bucket{tokens: sourceBurst, last: now}
			l.buckets[src] = b
		}
	}
	b.refill(now)
	b.tokens = max(b.tokens-1, 0)
}

// sweep forgets the sources whose buckets are full again.
func (l *sourceLimiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.refill(now); b.tokens >= sourceBurst {
			delete(l.buckets, k)
		}
	}
}

// rejectLog decides which rejections are logged: the first of each kind
// (reason and signer, when known), then at most one a minute with how many
// more there were. A flood of bad frames thus costs a counter increment
// each (Status().Rejected counts every one), not a log line.
type rejectLog struct {
	mu   sync.Mutex
	seen map[string]*logged
}

type logged struct {
	at   time.Time
	more int64
}

// rejectLogEvery is how often a kind of rejection that keeps coming is
// logged again, maxRejectKinds how many kinds are remembered.
const (
	rejectLogEvery = time.Minute
	maxRejectKinds = 1024
)

// due reports whether a rejection of kind key is to be logged now and, if
// so, how many of that kind were not logged since the last line.
func (l *rejectLog) due(key string, now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || len(l.seen) >= maxRejectKinds {
		l.seen = map[string]*logged{}
	}
	s := l.seen[key]
	if s == nil {
		l.seen[key] = &logged{at: now}
		return true, 0
	}
	if now.Sub(s.at) < rejectLogEvery {
		s.more++
		return false, 0
	}
	more := s.more
	s.at, s.more = now, 0
	return true, more
}
