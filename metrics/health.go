package metrics

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/demes/demes/api"
)

// Readiness is what /readyz answers: whether the node is ready, and why,
// group by group.
type Readiness struct {
	Ready bool
	// Reasons has one line per group, "group ID: REASON", in the order of
	// the node's status; or one line saying why the node is not ready at
	// all.
	Reasons []string
}

// Ready decides readiness from the node's status. A node is ready when it
// runs (it opened its store at start and holds it until it stops) and each
// of its groups is in one of the states a person would call working:
//
//   - it knows a host;
//   - it has no host and cannot have one, because fewer than a majority of
//     the group's voters are reachable: it waits for quorum, and restarting
//     this node would not help (messages wait in the outbox meanwhile);
//   - this node has left it.
//
// A group without a host whose voters are reachable in a majority is
// electing one, or this node is cut off from it: not ready. So is a group
// that this node is still joining (no members known yet), and a group
// halted on this node because its history forked (api.ForkAlert), which no
// restart mends: a person must look at it. The reasons name
// groups by id and count voters; they never name a member.
func Ready(running bool, st api.Status) Readiness {
	if !running {
		return Readiness{Reasons: []string{"the node is stopped"}}
	}
	r := Readiness{Ready: true}
	for _, g := range st.Groups {
		ok, why := groupReady(g)
		r.Ready = r.Ready && ok
		r.Reasons = append(r.Reasons, fmt.Sprintf("group %s: %s", g.GroupID, why))
	}
	return r
}

func groupReady(g api.GroupStatus) (bool, string) {
	if g.Role == "left" {
		return true, "this node has left it"
	}
	if g.Fork != nil {
		return false, fmt.Sprintf("halted: its history forked at index %d (see demes status)", g.Fork.Index)
	}
	voters, online := 0, 0
	for _, m := range g.Members {
		if m.Voter {
			voters++
			if m.Online {
				online++
			}
		}
	}
	switch {
	case g.Host != "":
		return true, fmt.Sprintf("host known (term %d)", g.Term)
	case voters == 0:
		return false, "joining: no voters known yet"
	case online < voters/2+1:
		return true, fmt.Sprintf("waiting for quorum: %d of %d voters reachable, %d needed", online, voters, voters/2+1)
	}
	return false, fmt.Sprintf("no host yet: electing one (%d of %d voters reachable)", online, voters)
}

// healthz answers 200 "ok" while the node runs, 503 when it is stopped.
func healthz(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !src.Running() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("the node is stopped\n"))
			return
		}
		w.Write([]byte("ok\n"))
	}
}

// readyz answers 200 with "ok" or 503 with "not ready" on the first line,
// then the reasons of [Ready], one a line.
func readyz(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		running := src.Running()
		var st api.Status
		if running {
			st = src.Status()
		}
		rd := Ready(running, st)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		first := "ok"
		if !rd.Ready {
			first = "not ready"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte(first + "\n" + strings.Join(append(rd.Reasons, ""), "\n")))
	}
}
