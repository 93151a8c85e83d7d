package node

import (
	"fmt"
	"testing"
	"time"
)

// TestSourceLimiter: a source may fail sourceBurst times at once, then
// sourceRate times a second; other sources are not affected; IPv6 sources
// are limited per /64; and the table of sources stays bounded.
func TestSourceLimiter(t *testing.T) {
	l := newSourceLimiter()
	t0 := time.Unix(1_000_000, 0)
	bad, good := sourceOf("192.0.2.1:4000"), sourceOf("192.0.2.2:4000")
	for i := range sourceBurst {
		if !l.allow(bad, t0) {
			t.Fatalf("refused after %d failures, the burst is %d", i, sourceBurst)
		}
		l.charge(bad, t0)
	}
	if l.allow(bad, t0) {
		t.Fatal("allowed after the burst")
	}
	if !l.allow(good, t0) {
		t.Fatal("another source refused")
	}
	if !l.allow(bad, t0.Add(time.Second/sourceRate)) {
		t.Fatal("no token back after 1/rate")
	}
	l.charge(bad, t0.Add(time.Second/sourceRate))
	if l.allow(bad, t0.Add(time.Second/sourceRate)) {
		t.Fatal("two tokens back after 1/rate")
	}

	a, b := sourceOf("[2001:db8:1:2::1]:80"), sourceOf("[2001:db8:1:2:ffff::9]:443")
	if a != b || a == sourceOf("[2001:db8:1:3::1]:80") {
		t.Fatalf("IPv6 sources %q and %q: want one per /64", a, b)
	}

	// Many sources failing once each: the table stays bounded, and the
	// ones beyond it share a bucket, which a flood from fresh addresses
	// empties.
	for i := range maxSources + 2*sourceBurst {
		l.charge(fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff), t0)
	}
	if n := len(l.buckets); n > maxSources {
		t.Fatalf("%d sources tracked, the bound is %d", n, maxSources)
	}
	if l.allow("10.200.0.1", t0) {
		t.Fatal("a fresh address beyond the bound was allowed while the shared bucket is empty")
	}
	// Idle sources are forgotten once their buckets are full again.
	later := t0.Add(time.Hour)
	l.charge("10.201.0.1", later)
	if n := len(l.buckets); n > 2 {
		t.Fatalf("%d sources tracked an hour later, want the idle ones forgotten", n)
	}
}

// TestRejectLog: the first rejection of a kind is logged, the next ones
// within a minute only counted, and the first after it logged with how many
// were not.
func TestRejectLog(t *testing.T) {
	var l rejectLog
	t0 := time.Unix(1_000_000, 0)
	if ok, _ := l.due("junk", t0); !ok {
		t.Fatal("the first of a kind is not logged")
	}
	for i := range 1000 {
		if ok, _ := l.due("junk", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			t.Fatalf("rejection %d of a kind within a minute logged", i+2)
		}
	}
	if ok, _ := l.due("other", t0); !ok {
		t.Fatal("the first of another kind is not logged")
	}
	ok, more := l.due("junk", t0.Add(rejectLogEvery))
	if !ok || more != 1000 {
		t.Fatalf("a minute on: logged %v with %d more, want true with 1000", ok, more)
	}
}
