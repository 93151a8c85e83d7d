package web

import (
	"context"
	"slices"
	"testing"

	"github.com/demes/demes/api"
	"github.com/demes/demes/web/webtest"
)

// groupSettings returns the settings of group gid in the fake world.
func (w *fakeWorld) groupSettings(gid string) api.GroupSettings {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.groups[gid].settings
}

// TestBrowserReachAndRelays: the page says how this device is reached from
// the internet (as the node's status says: not directly, through a relay),
// how it reaches each member (directly, or only through a relay), and
// lists the group's relays in the group settings. An admin changes the
// list there, and the other settings stay as they were; a member who is
// not an admin sees the list and no field. The members-invite switch,
// which leaves the relays out of its change, keeps them.
func TestBrowserReachAndRelays(t *testing.T) {
	w, gid := newFriends(t)
	alice, bob, carol := w.node("alice"), w.node("bob"), w.node("carol")
	ctx := context.Background()
	if err := alice.SetSettings(ctx, gid, api.GroupSettings{MsgsPerMinute: 30}); err != nil {
		t.Fatal(err)
	}
	w.setPath(alice, bob, "direct")
	w.setPath(alice, carol, "relayed")
	const relay = "/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWGRUVh7DBUtLKRuTXbgDbKYXwPnRaqcHsGKy8ZYjCVVBZ"
	w.setReach(alice, &api.Reachability{State: api.ReachPrivate, Unreachable: []string{"/ip4/198.51.100.4/tcp/7948"},
		Relays: []string{relay}})

	a := openUI(t, startUI(t, alice, nil))
	a.WaitText(memberRow(bob)+" .member-facts", "· direct")
	a.WaitText(memberRow(carol)+" .member-facts", "· through a relay")
	a.Click("#group-details summary")
	a.WaitText("#group-raft", "Your device from the internet")
	a.WaitText("#group-raft", "not reachable directly (behind a router or firewall) · others reach it through a relay")
	a.WaitText("#group-raft", "direct: bob; through a relay: carol")

	// Reachable after all: the page follows.
	w.setReach(alice, &api.Reachability{State: api.ReachPublic, Reachable: []string{"/ip4/198.51.100.4/tcp/7948"}})
	a.WaitText("#group-raft", "reachable directly at /ip4/198.51.100.4/tcp/7948")

	// No relays yet; alice, an admin, lists one.
	a.WaitVisible("#relays-none")
	a.WaitVisible("#relays-form")
	a.SetValue("#relays-input", relay+"\n")
	a.Click("#relays-submit")
	a.WaitFor("the relay in the list", `(want) => { const li = document.querySelectorAll('#relay-list .relay'); return li.length === 1 && li[0].title === want; }`, relay)
	a.WaitHidden("#relays-none")
	s := w.groupSettings(gid)
	if !slices.Equal(s.Relays, []string{relay}) || s.MsgsPerMinute != 30 || s.MembersInvite {
		t.Errorf("settings after saving the relays: %+v, want the relay, 30 messages a minute, members_invite off", s)
	}

	a.ScreenshotElement("#side-panel", "relays-settings")

	b := openUI(t, startUI(t, bob, nil))
	b.WaitFor("the relay in bob's list", `() => document.querySelectorAll('#relay-list .relay').length === 1`)
	b.WaitHidden("#relays-form")

	// The members-invite switch sends no relays: the group keeps them;
	// and it sends the quotas in force, which stay (PUT replaces the
	// settings: a quota left out would fall back to the default).
	a.Click("#setting-members-invite")
	a.WaitFor("members may invite", `() => document.getElementById('setting-members-invite').checked && !document.getElementById('setting-members-invite').disabled`)
	if s := w.groupSettings(gid); !s.MembersInvite || !slices.Equal(s.Relays, []string{relay}) || s.MsgsPerMinute != 30 {
		t.Errorf("settings after the switch: %+v, want members_invite on, the relay kept and 30 messages a minute", s)
	}

	// An empty field takes them all out.
	// (chromedp cannot set an empty value: the page clears it as a
	// person deleting the text would.)
	webtest.Eval[bool](a, `(() => { const e = document.getElementById('relays-input'); e.focus(); e.value = ''; e.dispatchEvent(new Event('input')); return true; })()`)
	a.Click("#relays-submit")
	a.WaitVisible("#relays-none")
	if s := w.groupSettings(gid); len(s.Relays) != 0 {
		t.Errorf("relays after emptying the field: %q", s.Relays)
	}
}
