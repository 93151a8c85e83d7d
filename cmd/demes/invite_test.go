package main

import (
	"os"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

func TestParseLifetime(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		in   string
		want time.Duration // 0: refused
	}{
		{"48h", 48 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1m", time.Minute},
		{"7d", 7 * day},
		{"1d12h", day + 12*time.Hour},
		{"1d30m", day + 30*time.Minute},
		{"90d", 90 * day},
		{"2159h59m", 90*day - time.Minute},
		{"91d", 0},
		{"89d25h", 0},
		{"59s", 0},
		{"0d", 0},
		{"", 0},
		{"d", 0},
		{"1.5d", 0},
		{"-1d", 0},
		{"7d-1h", 0},
		{"7d+1h", 0},
		{"7days", 0},
		{"1d2d", 0},
		{"soon", 0},
		{"99999999d", 0},
	} {
		got, err := parseLifetime(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("parseLifetime(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseLifetime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestLifetime(t *testing.T) {
	for d, want := range map[time.Duration]string{
		7 * 24 * time.Hour:                       "7 days",
		24*time.Hour + 12*time.Hour:              "1 day 12 hours",
		48*time.Hour - 1500*time.Millisecond:     "2 days",
		2*24*time.Hour + time.Hour + time.Minute: "2 days 1 hour 1 minute",
		90 * time.Minute:                         "1 hour 30 minutes",
		20 * time.Second:                         "less than a minute",
	} {
		if got := lifetime(d); got != want {
			t.Errorf("lifetime(%v) = %q, want %q", d, got, want)
		}
	}
}

// The table of `demes invites`: whom each invite lets in, who made it, when
// it expires (a queued one says it has no code yet), and the public id to
// revoke it by.
func Example_printInvites() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	printInvites(os.Stdout, []api.PendingInvite{
		{Invitee: bob.String(), Fingerprint: bob.Fingerprint(), Inviter: alice.String(), InviterName: "Alice", ExpiresAt: now.Add(36 * time.Hour)},
		{Invitee: alice.String(), Inviter: bob.String(), ExpiresAt: now.Add(-time.Minute)},
		{Invitee: bob.String(), Fingerprint: bob.Fingerprint(), Inviter: alice.String(), InviterName: "Alice", ExpiresAt: now.Add(7 * 24 * time.Hour), State: api.InviteQueued},
	}, now)
	// Output:
	// INVITEE              INVITED BY           EXPIRES                                                PUBLIC ID
	// 70e4 647c 096f 1192  Alice                2025-03-03 00:00 UTC (in 1 day 12 hours)               demes15cnsypvxasycl7jxd9537r5jlhrxh5a7ge0zl68a90mvqeaqeppft736gpcc8tuzt4wradumfgcsjjhdrc6ayfvknssn90r00lymkps9q6wr4
	// d341 d769 1e1e b07d  70e4 647c 096f 1192  2025-03-01 11:59 UTC (expired)                         demes1dalxcaa6h89umm7t5zyc44r4x5dhemrmusgc8t34fxj70md8p72xrjw6l8znxt2p7ynu4zsv3uqrxn5tyhy7ze74dyww6zs7tjqm6dcpl05k2
	// 70e4 647c 096f 1192  Alice                2025-03-08 12:00 UTC (in 7 days; queued, no code yet)  demes15cnsypvxasycl7jxd9537r5jlhrxh5a7ge0zl68a90mvqeaqeppft736gpcc8tuzt4wradumfgcsjjhdrc6ayfvknssn90r00lymkps9q6wr4
}
