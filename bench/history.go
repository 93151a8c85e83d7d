package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
)

// HistoryOptions configures [History].
type HistoryOptions struct {
	// Binary is the demes executable to run. Required.
	Binary string
	// Messages is how many messages of about 100 bytes the group gets
	// (default 100,000).
	Messages int
	// Senders is how many clients send at once (default 64).
	Senders int
	// Progress, when set, receives progress lines.
	Progress io.Writer
}

// HistoryResult is what [History] measured, on the first node.
type HistoryResult struct {
	Messages int
	// RSS is the node's resident memory right after every message was
	// committed, and RSSRestarted after its restart and a first page;
	// Disk the size of its store. RSSFile and RSSFileRestarted are the
	// parts of those that are file pages mapped into memory (bbolt's
	// store, the binary), which the kernel reclaims under pressure, unlike
	// the heap: where the memory goes (issue 16).
	RSS, RSSRestarted, Disk   int64
	RSSFile, RSSFileRestarted int64
	// Heap is what the Go runtime of the first node said of its memory
	// at the same moment as RSS (zero if its metrics did not answer).
	Heap GoMemory
	// Rate is the messages committed per second while sending.
	Rate float64
	// FirstPage: the newest 100 messages through the local API.
	FirstPage Samples
	// Restart: from the start of the killed node's process until it
	// answers the first page. CleanRestart: the same after a clean stop
	// (SIGINT), which takes a snapshot and writes bbolt's free-page list,
	// and RSSClean the resident memory after it.
	Restart, CleanRestart  time.Duration
	RSSClean, RSSFileClean int64
	// CatchUp: from the start of the third node, down while every message
	// was sent, until it has applied the whole log.
	CatchUp time.Duration
	// CatchUpCPU is the CPU time the third node's process used meanwhile
	// (its start included), and CatchUpOthersCPU that of the other two: a
	// figure that depends less than CatchUp on what else the machine runs.
	CatchUpCPU, CatchUpOthersCPU time.Duration
}

// Figures returns the table lines of the result.
func (r HistoryResult) Figures() []Figure {
	if r.CatchUp == 0 {
		return nil // the run failed before it measured anything
	}
	n := fmt.Sprintf("%d messages", r.Messages)
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	return []Figure{
		{Name: "history: resident memory of a node, " + n, Unit: "MiB", N: 1, Median: mib(r.RSS), P99: nan(), Target: "< 100 MiB at 1,000,000", Verdict: Info,
			Note: fmt.Sprintf("%.0f MiB of it mapped files (store, binary); Go heap: %.0f MiB in use, %.0f MiB free but kept (collector slack), stacks %.0f MiB; %.0f MiB (%.0f MiB file) after a restart and a first page; default settings (GOGC=400, a 64 MiB soft memory limit that follows the live heap)",
				mib(r.RSSFile), mib(r.Heap.InUse), mib(r.Heap.Kept), mib(r.Heap.Stacks), mib(r.RSSRestarted), mib(r.RSSFileRestarted))},
		{Name: "history: disk per message, " + n, Unit: "bytes", N: 1, Median: float64(r.Disk) / float64(max(r.Messages, 1)), P99: nan(),
			Target: "<= 1024", Verdict: verdict(r.Disk <= 1024*int64(r.Messages)), Note: fmt.Sprintf("store %.0f MiB", mib(r.Disk))},
		{Name: "history: send rate while filling, " + n, Unit: "msg/s", N: 1, Median: r.Rate, P99: nan(), Verdict: Info, Note: "3 demes serve processes, one down"},
		durationFigure("history: first page (newest 100), "+n, "ms", r.FirstPage, 50*time.Millisecond, 0),
		{Name: "history: restart (kill -9) -> first page answered, " + n, Unit: "s", N: 1, Median: r.Restart.Seconds(), P99: nan(), Verdict: Info},
		{Name: "history: restart after a clean stop -> first page answered, " + n, Unit: "s", N: 1, Median: r.CleanRestart.Seconds(), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("%.0f MiB resident after it (%.0f MiB file)", mib(r.RSSClean), mib(r.RSSFileClean))},
		{Name: "history: catch-up of a member that missed " + n, Unit: "msg/s", N: 1, Median: float64(r.Messages) / r.CatchUp.Seconds(), P99: nan(),
			Target: ">= 20000", Verdict: verdict(float64(r.Messages)/r.CatchUp.Seconds() >= 20000), Note: fmt.Sprintf("%.1f s to apply the whole log", r.CatchUp.Seconds())},
		{Name: "history: CPU per message of that catch-up, " + n, Unit: "us", N: 1, Median: perMessage(r.CatchUpCPU, r.Messages), P99: nan(), Verdict: Info,
			Note: fmt.Sprintf("on the member catching up; %.1f us on the other two together", perMessage(r.CatchUpOthersCPU, r.Messages))},
	}
}

// History fills a three-node group of `demes serve` processes with
// o.Messages messages while the third node is down, and measures what the
// first node holds (memory, disk), how fast it pages and restarts, and how
// fast the third catches up.
func History(ctx context.Context, o HistoryOptions) (HistoryResult, error) {
	r := HistoryResult{Messages: o.Messages}
	if o.Binary == "" {
		return r, errors.New("history: no demes binary given")
	}
	if r.Messages <= 0 {
		r.Messages = 100_000
	}
	if o.Senders <= 0 {
		o.Senders = 64
	}
	// The first node's metrics say how much of its memory is Go's heap.
	procs, gid, stop, err := startProcGroup(ctx, o.Binary, "history", 3, HTTP, func(i int, p *serveProc) (err error) {
		if i == 0 {
			p.metrics, err = freeAddr()
		}
		return err
	})
	defer stop()
	if err != nil {
		return r, err
	}
	if _, err := waitStable(ctx, procs, gid); err != nil {
		return r, err
	}
	if err := procs[2].kill(); err != nil {
		return r, err
	}
	// About 100 bytes each.
	text := strings.Repeat("history ", 11)
	var next, done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	var sendErr atomic.Value
	for s := 0; s < o.Senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails := 0
			for next.Add(1) <= int64(r.Messages) && ctx.Err() == nil {
				k := next.Load()
				m, code, err := procs[s%2].api.send(ctx, gid, fmt.Sprintf("%07d %s", k, text), 5*time.Second)
				if err != nil || code != http.StatusOK || m.State != node.StateCommitted {
					// Slow on a loaded machine: this one may still
					// commit (it is not counted); send another.
					if fails++; fails > 20 {
						sendErr.Store(fmt.Errorf("send %d: %v (%d %s)", k, err, code, m.State))
						return
					}
					next.Add(-1)
					continue
				}
				if d := done.Add(1); o.Progress != nil && d%10000 == 0 {
					fmt.Fprintf(o.Progress, "bench: history: %d messages\n", d)
				}
			}
		}()
	}
	wg.Wait()
	if e := sendErr.Load(); e != nil {
		return r, e.(error)
	}
	r.Rate = float64(r.Messages) / time.Since(start).Seconds()
	p := procs[0]
	r.RSS, r.RSSFile = rss(p.cmd.Process.Pid)
	r.Heap = heapOf(ctx, p.metrics)
	r.Disk = fileSize(filepath.Join(p.home, "store.db"))
	for k := 0; k < 20; k++ {
		t := time.Now()
		if err := firstPage(ctx, p, gid); err != nil {
			return r, err
		}
		r.FirstPage = append(r.FirstPage, time.Since(t))
	}
	if err := p.kill(); err != nil {
		return r, err
	}
	if r.Restart, r.RSSRestarted, r.RSSFileRestarted, err = restartToFirstPage(ctx, p, gid, "the restart"); err != nil {
		return r, err
	}
	p.stop()
	if r.CleanRestart, r.RSSClean, r.RSSFileClean, err = restartToFirstPage(ctx, p, gid, "a clean restart"); err != nil {
		return r, err
	}

	st, err := procs[1].api.status(ctx)
	if err != nil {
		return r, err
	}
	var commit uint64
	for _, g := range st.Groups {
		if g.GroupID == gid {
			commit = g.Committed
		}
	}
	othersCPU := func() time.Duration {
		return procCPU(procs[0].cmd.Process.Pid) + procCPU(procs[1].cmd.Process.Pid)
	}
	others := othersCPU()
	t := time.Now()
	if err := procs[2].start(ctx); err != nil {
		return r, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := testutil.Poll(cctx, 20*time.Millisecond, "the third node to catch up", func() bool {
		st, err := procs[2].api.status(cctx)
		if err != nil {
			return false
		}
		for _, g := range st.Groups {
			if g.GroupID == gid {
				return g.Committed >= commit
			}
		}
		return false
	}); err != nil {
		return r, err
	}
	r.CatchUp = time.Since(t)
	r.CatchUpCPU, r.CatchUpOthersCPU = procCPU(procs[2].cmd.Process.Pid), othersCPU()-others
	return r, nil
}

// restartToFirstPage starts p again and returns the time until it answers
// the first page of group gid, and its resident memory then (total and
// file pages); what names the restart in an error.
func restartToFirstPage(ctx context.Context, p *serveProc, gid, what string) (took time.Duration, total, file int64, err error) {
	t := time.Now()
	if err := p.start(ctx); err != nil {
		return 0, 0, 0, err
	}
	if err := testutil.Poll(ctx, 5*time.Millisecond, "the first page after "+what, func() bool { return firstPage(ctx, p, gid) == nil }); err != nil {
		return 0, 0, 0, err
	}
	took = time.Since(t)
	total, file = rss(p.cmd.Process.Pid)
	return took, total, file, nil
}

// perMessage is d divided among n messages, in microseconds.
func perMessage(d time.Duration, n int) float64 {
	return float64(d.Microseconds()) / float64(max(n, 1))
}

// firstPage asks p for the newest 100 messages of gid.
func firstPage(ctx context.Context, p *serveProc, gid string) error {
	var page api.MessagePage
	code, err := p.api.do(ctx, http.MethodGet, "/api/v1/groups/"+gid+"/messages?limit=100", nil, &page)
	if err != nil || code != http.StatusOK || len(page.Messages) == 0 {
		return fmt.Errorf("first page: %v (%d, %d messages)", err, code, len(page.Messages))
	}
	return nil
}

// rss is the resident memory of process pid in bytes (Linux), and the part
// of it that is file pages mapped into memory; 0 if unknown.
func rss(pid int) (total, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			total = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return total, file
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
