package main

import (
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

// TestStrandedMemberProcesses is issue 16's scenario with six `demes serve`
// processes on loopback, driven through the command line as people would:
// a founding member (ana) is offline while three newcomers join, then the
// other two founders go away for good, one at a time, the group committing
// meanwhile (its voters move to the newcomers). When ana comes back, on the
// address the group knows, every member she knew is gone and every member
// still there is one she never heard of: she must check the chain of
// membership from what she last knew, catch up from the newcomers, and the
// message she queued on her return must commit exactly once.
// (node.TestStrandedMemberCatchesUp is the same in one process, and the
// benchmark BenchmarkStrandedMemberBack times it.)
func TestStrandedMemberProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	var procs []*serveProc
	for _, name := range []string{"ana", "ben", "cai", "dan", "eve", "fay"} {
		procs = append(procs, newServeProc(t, name))
	}
	ana, ben, cai, dan, eve, fay := procs[0], procs[1], procs[2], procs[3], procs[4], procs[5]
	for _, p := range procs[:3] {
		p.start()
	}
	formProcGroup(t, procs[:3], "founders")
	// ben will invite the newcomers while ana, the creator, is away.
	wantExit(t, ana.demes("admin", "add", pubOf(t, ben)), 0)
	wantExit(t, ana.demes("send", "founded", "--timeout", "30s"), 0)
	waitVoters(t, procs[:3], 3)

	// ana goes offline; three newcomers join through ben.
	ana.kill()
	for _, p := range []*serveProc{dan, eve, fay} {
		p.start()
		code := ben.demes("invite", pubOf(t, p))
		wantExit(t, code, 0)
		wantExit(t, p.demes("join", code.lastLine()), 0)
	}
	// The other founders go away for good, one at a time, each once the
	// voters without the gone ones are a quorum in dan's view.
	survives := func(gone ...*serveProc) func() bool {
		out := map[string]bool{}
		for _, p := range gone {
			out[pubOf(t, p)] = true
		}
		return func() bool {
			st := dan.status()
			if len(st.Groups) != 1 {
				return false
			}
			all, left := 0, 0
			for _, m := range st.Groups[0].Members {
				if m.Voter {
					all++
					if !out[m.PublicID] {
						left++
					}
				}
			}
			return left >= all/2+1
		}
	}
	testutil.Eventually(t, 90*time.Second, "voters that survive ana and ben going", survives(ana, ben))
	ben.kill()
	wantExit(t, dan.demes("send", "ben went away", "--timeout", "60s"), 0)
	testutil.Eventually(t, 90*time.Second, "voters that survive cai going too", survives(ana, ben, cai))
	cai.kill()
	wantExit(t, eve.demes("send", "only newcomers now", "--timeout", "60s"), 0)

	// ana comes back and sends at once: nobody she knows answers, so the
	// message is queued (exit 3).
	back := time.Now()
	ana.start()
	wantExit(t, ana.demes("send", "I am back", "--timeout", "1ms"), 3)
	// The newcomers cannot read what was sent before they joined.
	want := "ben went away|only newcomers now|I am back"
	lists := func(p *serveProc) string {
		var texts []string
		for _, m := range p.messages() {
			texts = append(texts, m.Text)
		}
		return strings.Join(texts, "|")
	}
	testutil.Eventually(t, 90*time.Second, "ana to catch up and her message to commit once everywhere", func() bool {
		if lists(ana) != "founded|"+want {
			return false
		}
		for _, p := range []*serveProc{dan, eve, fay} {
			if lists(p) != want {
				return false
			}
		}
		return true
	})
	t.Logf("ana was back in step, her queued message committed once, %v after her restart", time.Since(back).Round(time.Millisecond))
	// Back in step, ana sends like any member, and counts the newcomers as
	// members and the founders who left as gone.
	wantExit(t, ana.demes("send", "in step", "--timeout", "60s"), 0)
	st := ana.status()
	var members []string
	for _, m := range st.Groups[0].Members {
		members = append(members, m.PublicID)
	}
	for _, p := range []*serveProc{dan, eve, fay} {
		if !strings.Contains(strings.Join(members, " "), pubOf(t, p)) {
			t.Errorf("ana does not list %s as a member after catching up: %v", p.name, members)
		}
	}
}

// pubOf returns p's public id, as `demes id` prints it.
func pubOf(t *testing.T, p *serveProc) string {
	t.Helper()
	r := p.demes("id")
	wantExit(t, r, 0)
	return r.lastLine()
}
