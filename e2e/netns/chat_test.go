package netns

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The chat the scenarios hold, through the CLI as a person would: a group,
// invites, joins, messages, and the check that every member ends with the
// same history.

// formGroup has creator make a group and invite each joiner by its public
// id; each joins with the code and the command returns once it is a
// member. It returns the group id.
func formGroup(t *testing.T, creator *node, joiners ...*node) string {
	t.Helper()
	gid := creator.must(0, "group", "create", "netns").lastLine()
	for _, j := range joiners {
		code := creator.must(0, "invite", j.pub).lastLine()
		start := time.Now()
		if got := j.must(0, "join", code).lastLine(); got != gid {
			t.Fatalf("%s: join printed %q, want the group id %s", j.name, got, gid)
		}
		t.Logf("%s joined in %v", j.name, time.Since(start).Round(time.Millisecond))
	}
	return gid
}

// send sends text from n and fails the test unless it is committed: the
// timeout is long because a send may wait for an election or a path.
func send(t *testing.T, n *node, text string) {
	t.Helper()
	start := time.Now()
	n.must(0, "send", text, "--timeout", "90s")
	t.Logf("%s: %q committed in %v", n.name, text, time.Since(start).Round(time.Millisecond))
}

// waitVoters waits until each node sees its one group with want voters.
func waitVoters(t *testing.T, nodes []*node, want int) {
	t.Helper()
	waitFor(t, waitLong, fmt.Sprintf("%d voters on every node", want), func() bool {
		for _, n := range nodes {
			st := n.status()
			if len(st.Groups) != 1 {
				return false
			}
			voters := 0
			for _, m := range st.Groups[0].Members {
				if v, _ := m["voter"].(bool); v {
					voters++
				}
			}
			if voters != want {
				return false
			}
		}
		return true
	})
}

// waitOneHost waits until every node names the same host, and returns it.
func waitOneHost(t *testing.T, nodes []*node) *node {
	t.Helper()
	var host *node
	waitFor(t, waitLong, "one host that every node names", func() bool {
		host = nil
		named := ""
		for i, n := range nodes {
			st := n.status()
			if len(st.Groups) != 1 || st.Groups[0].Host == "" || (i > 0 && st.Groups[0].Host != named) {
				return false
			}
			named = st.Groups[0].Host
		}
		for _, n := range nodes {
			if n.pub == named {
				host = n
			}
		}
		return host != nil
	})
	return host
}

// waitSameHistory waits until every node lists the same committed messages
// (same ids at the same indexes, in the same order) and that list holds
// each of texts exactly once, and fails the test with every node's list
// otherwise. Nothing lost, nothing twice, one order.
func waitSameHistory(t *testing.T, nodes []*node, texts []string) {
	t.Helper()
	start := time.Now()
	var last [][]chatMsg
	ok := pollUntil(waitLong, func() bool {
		last = last[:0]
		for _, n := range nodes {
			last = append(last, n.committed())
		}
		for _, ms := range last[1:] {
			if historyLine(ms) != historyLine(last[0]) {
				return false
			}
		}
		return holdsOnce(last[0], texts) == ""
	})
	if !ok {
		var b strings.Builder
		for i, n := range nodes {
			fmt.Fprintf(&b, "\n%s: %s", n.name, historyLine(last[i]))
			if why := holdsOnce(last[i], texts); why != "" {
				fmt.Fprintf(&b, "\n  (%s)", why)
			}
		}
		t.Fatalf("after %v the nodes do not hold the same %d messages:%s", waitLong, len(texts), b.String())
	}
	t.Logf("all %d nodes hold the same %d messages, %v after asking", len(nodes), len(texts), time.Since(start).Round(time.Millisecond))
}

// pollUntil checks cond every pollEvery until it holds or d passes, and
// says whether it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// historyLine writes a node's committed messages as one comparable line.
func historyLine(ms []chatMsg) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%d:%s:%s|", m.Index, m.ID, m.Text)
	}
	return b.String()
}

// holdsOnce says what is wrong with ms if it does not hold each of texts
// exactly once ("" when it does). Messages other than the test's, such as
// notices of joins, may come between them.
func holdsOnce(ms []chatMsg, texts []string) string {
	seen := map[string]int{}
	for _, m := range ms {
		seen[m.Text]++
	}
	var missing, twice []string
	for _, text := range texts {
		switch seen[text] {
		case 0:
			missing = append(missing, text)
		case 1:
		default:
			twice = append(twice, text)
		}
	}
	if len(missing)+len(twice) == 0 {
		return ""
	}
	return fmt.Sprintf("missing %q, more than once %q", missing, twice)
}

// memberPath is how n reaches the member pub now, from the member's "path"
// field: "direct", "relayed", or "" while unknown (the field is left out
// then).
func memberPath(n *node, pub string) string {
	n.t.Helper()
	path, _ := memberField(n, pub, "path").(string)
	return path
}

// memberField is field of the member pub in n's status, nil if absent.
func memberField(n *node, pub, field string) any {
	n.t.Helper()
	for _, m := range n.members() {
		if id, _ := m["public_id"].(string); id == pub {
			return m[field]
		}
	}
	return nil
}

// waitPath waits up to 30 seconds until n says it reaches other by path
// ("direct" or "relayed"), and fails the test otherwise.
func waitPath(t *testing.T, n, other *node, want string) {
	t.Helper()
	var path string
	start := time.Now()
	if !pollUntil(30*time.Second, func() bool {
		path = memberPath(n, other.pub)
		return path == want
	}) {
		t.Errorf("%s: the path to %s is %q after 30s, want %q; %s's peer URL there: %v",
			n.name, other.name, path, want, other.name, memberField(n, other.pub, "peer_url"))
		return
	}
	t.Logf("%s reaches %s %s (%v after asking)", n.name, other.name, path, time.Since(start).Round(time.Millisecond))
}

// chatBothWays has a and b send rounds messages each, taking turns, and
// returns the texts sent; tag makes them differ from other calls' texts,
// since the history check counts each text.
func chatBothWays(t *testing.T, tag string, a, b *node, rounds int) []string {
	t.Helper()
	var texts []string
	for i := 1; i <= rounds; i++ {
		for _, n := range []*node{a, b} {
			text := fmt.Sprintf("%s says %d (%s)", n.name, i, tag)
			send(t, n, text)
			texts = append(texts, text)
		}
	}
	return texts
}
