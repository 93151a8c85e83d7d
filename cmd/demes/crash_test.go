package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/demes/demes/api"
)

// sendOutcome is what one `demes send` of the burst did, by exit code:
// 0 acknowledged (committed), 3 queued in the outbox, anything else
// unknown (the node died during the call, or was down).
type sendOutcome struct {
	text string
	from string
	code int
	err  string // the "demes: error:" line of a failed send
}

// crashSend runs `demes send` without the testing.T helpers, which must not
// fail a test from another goroutine.
func crashSend(home, text string, timeout time.Duration) (int, string) {
	cmd := exec.Command(demesBin, "send", text, "--home", home, "--timeout", timeout.String())
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEMES_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &exit):
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.HasPrefix(line, "demes: error: ") {
				return exit.ExitCode(), line
			}
		}
		return exit.ExitCode(), ""
	}
	return -1, err.Error()
}

// TestCrashSafetyUnderKill sends from every member of a three-node group of
// real `demes serve` processes while killing them with SIGKILL at random
// moments (one down at a time) and restarting them on the same address.
// The nodes take a snapshot every 40 entries, so kills also land while one is
// written, and restarts restore one. Afterwards every node lists the same
// messages in the same order; every acknowledged send (exit 0) is there
// exactly once, every queued one (exit 3) too, and nothing is there twice.
//
// The random choices follow DEMES_CRASH_SEED when set (the seed is logged);
// when a kill comes still depends on timing.
func TestCrashSafetyUnderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("DEMES_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kill schedule seed %d (DEMES_CRASH_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	procs := []*serveProc{newServeProc(t, "ann"), newServeProc(t, "ben"), newServeProc(t, "cat")}
	for _, p := range procs {
		// Snapshots every few dozen entries, so that kills land during
		// them and most restarts restore one.
		p.extra = []string{"--snapshot-entries", "40"}
		p.start()
	}
	formProcGroup(t, procs, "crash")
	// The burst sends faster than the default quota (120 messages a
	// minute per member): this test is about crashes, not quotas.
	wantExit(t, procs[0].demes("group", "settings", "--msgs-per-minute", "100000"), 0)
	waitVoters(t, procs, 3)

	// The burst: every member sends as fast as its CLI returns, while the
	// test kills and restarts nodes.
	const burst = 25 * time.Second
	stop := time.Now().Add(burst)
	var (
		mu         sync.Mutex
		outcomes   []sendOutcome
		lastQueued = -1 // the node whose send was queued last
		wg         sync.WaitGroup
	)
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(stop); k++ {
				text := fmt.Sprintf("crash-%s-%03d", p.name, k)
				// Every other send waits only briefly, so that some are
				// still queued when they return, more so during failovers.
				timeout := 2 * time.Second
				if k%2 == 1 {
					timeout = 200 * time.Millisecond
				}
				code, errLine := crashSend(p.home, text, timeout)
				mu.Lock()
				outcomes = append(outcomes, sendOutcome{text: text, from: p.name, code: code, err: errLine})
				if code == 3 {
					lastQueued = i
				}
				mu.Unlock()
				if code != 0 && code != 3 {
					// Its node is down: do not spin.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	kills := 0
	wait := func(lo, hi time.Duration) {
		time.Sleep(lo + time.Duration(rng.Int63n(int64(hi-lo))))
	}
	for time.Now().Before(stop) {
		wait(500*time.Millisecond, 3*time.Second)
		// Half the time, kill the node whose outbox last took a message:
		// the message must survive there and be sent after the restart.
		victim := procs[rng.Intn(len(procs))]
		mu.Lock()
		if lq := lastQueued; lq >= 0 && rng.Intn(2) == 0 {
			victim = procs[lq]
		}
		mu.Unlock()
		victim.kill()
		kills++
		wait(100*time.Millisecond, 2*time.Second)
		victim.start()
	}
	wg.Wait()

	byCode := map[int]int{}
	reasons := map[string]int{}
	for _, o := range outcomes {
		byCode[o.code]++
		if o.code != 0 && o.code != 3 {
			reasons[o.err]++
		}
	}
	for why, k := range reasons {
		t.Logf("%d sends failed with: %s", k, why)
	}
	t.Logf("%d kills; %d sends: %d acknowledged, %d queued, %d failed", kills, len(outcomes), byCode[0], byCode[3], len(outcomes)-byCode[0]-byCode[3])
	if byCode[0] == 0 {
		t.Fatal("no send was acknowledged: the burst tested nothing")
	}

	// Settle: every node lists the same committed messages, none waits in
	// an outbox, and every queued message has arrived.
	var lists [][]api.Message
	settled := func() string {
		lists = lists[:0]
		for _, p := range procs {
			ms := p.messages()
			if ms == nil {
				return p.name + " does not list its messages"
			}
			for _, m := range ms {
				if m.State != api.StateCommitted {
					return fmt.Sprintf("%q still waits in the outbox of %s", m.Text, p.name)
				}
			}
			lists = append(lists, ms)
		}
		for i, ms := range lists[1:] {
			if msgTexts(ms) != msgTexts(lists[0]) {
				return fmt.Sprintf("%s lists %d messages, %s %d, or another order", procs[i+1].name, len(ms), procs[0].name, len(lists[0]))
			}
		}
		have := map[string]bool{}
		for _, m := range lists[0] {
			have[m.Text] = true
		}
		for _, o := range outcomes {
			if o.code == 3 && !have[o.text] {
				return fmt.Sprintf("%q, queued on %s, is not delivered", o.text, o.from)
			}
		}
		return ""
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		why := settled()
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after 60 s: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	count := map[string]int{}
	for _, m := range lists[0] {
		count[m.Text]++
	}
	sent := map[string]bool{}
	lost := 0
	for _, o := range outcomes {
		sent[o.text] = true
		switch {
		case o.code == 0 && count[o.text] == 0:
			lost++
			t.Errorf("%q, acknowledged by %s, is lost", o.text, o.from)
		case (o.code == 0 || o.code == 3) && count[o.text] != 1:
			t.Errorf("%q (exit %d from %s) delivered %d times", o.text, o.code, o.from, count[o.text])
		}
	}
	for text, k := range count {
		if k > 1 {
			t.Errorf("%q delivered %d times", text, k)
		}
		if !sent[text] {
			t.Errorf("%q delivered but never sent", text)
		}
	}
	t.Logf("%d messages delivered on every node in the same order; %d acknowledged messages lost", len(lists[0]), lost)
}
