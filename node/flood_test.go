package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/state"
)

// floodGroup is a group of nodes on real HTTP over loopback, with each
// node's log kept, and the identities an attack needs.
type floodGroup struct {
	*cluster
	logs  []*testutil.LockedBuffer
	rogue int // the member whose node is down, and whose key the rogue uses
}

// newFloodGroup forms a group of size members on HTTP over loopback with
// maxVoters voters and the given quota, then takes one member (a learner)
// down for the rogue to sign as.
func newFloodGroup(t testing.TB, size, maxVoters int, quota node.GroupSettings) *floodGroup {
	nc, err := nodetest.New(nodetest.Options{
		Size: size, HTTP: true, Dir: t.TempDir(),
		Config: node.Config{MaxVoters: maxVoters, RetryInterval: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	f := &floodGroup{cluster: &cluster{Cluster: nc, t: t}}
	for _, m := range nc.Members() {
		buf := &testutil.LockedBuffer{}
		name := m.Name
		m.Tweak = func(cfg *node.Config) {
			cfg.Logger = zerolog.New(buf).Level(zerolog.InfoLevel).With().Str("node", name).Logger()
		}
		f.logs = append(f.logs, buf)
	}
	if err := nc.StartAll(); err != nil {
		t.Fatal(err)
	}
	f.form()
	f.waitVoters(maxVoters)
	f.setSettings(0, quota)
	f.rogue = -1
	g, _ := f.Status(0)
	for i, m := range g.Members {
		if !m.Voter && f.rogue < 0 {
			f.rogue = f.Index(g.Members[i].PublicID)
		}
	}
	if f.rogue < 0 {
		t.Fatal("no learner to be the rogue")
	}
	return f
}

// flood is an attack on a floodGroup from the test process, until stopped:
// the rogue member proposes maximum-size chat messages to the host as fast
// as the host answers, and an outsider sends junk and validly signed frames
// of keys that are no member's to every live member, from another loopback
// address (127.0.0.2), as fast as they answer.
type flood struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	r      *rogue

	rogueSent, outsiderSent, outsiderRefused atomic.Int64
	codes                                    sync.Map // HTTP status -> *atomic.Int64, of the outsider's requests
}

// rogueDown takes the rogue's node down and returns the membership epoch
// the rogue seals its messages in.
func (f *floodGroup) rogueDown() uint64 {
	h := f.waitHost(f.rogue)
	stats, err := node.GroupLogStats(f.Node(h), f.GroupID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.Crash(f.rogue)
	return stats.Epoch
}

// startFlood starts the attack with the given numbers of goroutines. With
// pregen set, the rogue signs that many proposals for the current host
// first and then sends them over and over (once sent, a frame is a replay,
// refused after its signature is checked), so that signing does not take
// the nodes' CPU during the flood; otherwise it signs each one as it goes,
// for whoever is host then.
func (f *floodGroup) startFlood(epoch uint64, rogueWorkers, outsiderWorkers, pregen int) *flood {
	t := f.t
	var ids []*identity.Identity
	var urls []string
	for i, m := range f.Members() {
		ids = append(ids, m.ID)
		if i != f.rogue {
			urls = append(urls, m.URL)
		}
	}
	gid, _ := crypto.ParseGroupID(f.GroupID)
	fl := &flood{r: newRogue(t, f.Member(f.rogue).ID, f.GroupID, epoch, ids)}
	body := strings.Repeat("flood ", crypto.MaxBody/6)
	var signed [][]byte
	host := f.waitHost(f.rogue)
	for range pregen {
		signed = append(signed, fl.r.propose(f.Member(host).ID, fl.r.chat(body)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl.cancel = cancel

	// The outsider's frames, made before: a real attacker signs on its
	// own machine. Junk, and batches signed by keys no member knows.
	var frames [][]byte
	for k := range 8 {
		junk := make([]byte, []int{300, 64 << 10}[k%2])
		rand.Read(junk)
		junk[0] = crypto.Version
		stranger, _ := identity.Generate()
		m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(stranger.Public().Sign)), To: proto.Uint64(1),
			Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: make([]byte, []int{200, 64 << 10}[k%2])}}}
		frames = append(frames, junk, signBatch(t, stranger, gid, [32]byte{}, uint64(time.Now().UnixNano()), m))
	}
	outsider := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
		MaxIdleConnsPerHost: outsiderWorkers,
	}}
	member := &http.Client{Timeout: 10 * time.Second}
	for w := range outsiderWorkers {
		fl.wg.Add(1)
		go func() {
			defer fl.wg.Done()
			defer outsider.CloseIdleConnections()
			for k := w; ctx.Err() == nil; k++ {
				code := post(ctx, outsider, urls[k%len(urls)], frames[k%len(frames)])
				fl.outsiderSent.Add(1)
				if code != http.StatusOK {
					fl.outsiderRefused.Add(1)
				}
				v, _ := fl.codes.LoadOrStore(code, &atomic.Int64{})
				v.(*atomic.Int64).Add(1)
			}
		}()
	}
	var next atomic.Int64
	for range rogueWorkers {
		fl.wg.Add(1)
		go func() {
			defer fl.wg.Done()
			defer member.CloseIdleConnections()
			for ctx.Err() == nil {
				if len(signed) > 0 {
					post(ctx, member, f.Member(host).URL, signed[int(next.Add(1))%len(signed)])
					fl.rogueSent.Add(1)
					continue
				}
				h := f.Host()
				if h < 0 {
					_ = testutil.Wait(ctx, nil, 10*time.Millisecond, "a host", func() bool { return f.Host() >= 0 })
					continue
				}
				post(ctx, member, f.Member(h).URL, fl.r.propose(f.Member(h).ID, fl.r.chat(body)))
				fl.rogueSent.Add(1)
			}
		}()
	}
	return fl
}

// post posts a frame to a peer listener and returns the HTTP status (0 if
// the request failed).
func post(ctx context.Context, c *http.Client, url string, frame []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+node.PeerPath, bytes.NewReader(frame))
	if err != nil {
		return 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (fl *flood) stop() {
	fl.cancel()
	fl.wg.Wait()
}

func (fl *flood) code(c int) int64 {
	if v, ok := fl.codes.Load(c); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// TestFlood: one member proposing maximum-size messages as fast as the host
// answers, and an outsider sending junk and validly signed frames of
// strangers at full speed from another address, while the other members
// chat. The honest members' messages commit; the flooding member gets into
// the log what its quota allows and no more (the log grows by the quota,
// not by the flood); the outsider is refused, soon without its frames being
// read, and its rejections are counted, each reason logged once a minute at
// most.
func TestFlood(t *testing.T) {
	nodetest.ParallelTimed(t)
	f := newFloodGroup(t, 4, 3, node.GroupSettings{BytesPerDay: state.MinBytesPerDay})
	offsets := make([]int, len(f.logs))
	for i, l := range f.logs {
		offsets[i] = l.Len()
	}
	start := time.Now()
	fl := f.startFlood(f.rogueDown(), 2, 4, 0)
	defer fl.stop()

	var honest []int
	for i := range f.Size() {
		if i != f.rogue {
			honest = append(honest, i)
		}
	}
	const each = 3
	var texts []string
	for k := range each {
		for _, i := range honest {
			text := fmt.Sprintf("honest %d from node%d", k, i)
			f.sendCommitted(i, text, 30*time.Second)
			texts = append(texts, text)
		}
	}
	// The flood goes on until the rogue has sent several times its quota
	// and the outsider thousands of frames, faster than a source may fail
	// (on a loaded machine, 2,000 frames took 100 s: 7 a second to each
	// node, under the limit, which then had nothing to refuse).
	const rogueWanted = 3 * state.MinBytesPerDay / crypto.MaxBody
	const outsiderWanted = 2000
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	if err := f.Until(wctx, "the flood to be well over the quota", func() bool {
		return fl.rogueSent.Load() >= rogueWanted && fl.outsiderSent.Load() >= outsiderWanted && fl.code(http.StatusTooManyRequests) > 0
	}); err != nil {
		t.Fatalf("%v: the rogue sent %d of %d proposals, the outsider %d of %d frames (%d refused: %d with 429)", err,
			fl.rogueSent.Load(), rogueWanted, fl.outsiderSent.Load(), outsiderWanted, fl.outsiderRefused.Load(), fl.code(http.StatusTooManyRequests))
	}
	fl.stop()
	elapsed := time.Since(start)
	t.Logf("rogue sent %d proposals of %d KiB; outsider sent %d frames (%d refused: %d with 429) in %v",
		fl.rogueSent.Load(), crypto.MaxBody>>10, fl.outsiderSent.Load(), fl.outsiderRefused.Load(), fl.code(http.StatusTooManyRequests), elapsed.Round(time.Millisecond))

	ms := f.converged(len(texts))
	have := map[string]bool{}
	for _, m := range ms {
		have[m.Text] = true
	}
	for _, text := range texts {
		if !have[text] {
			t.Fatalf("%q is not listed everywhere", text)
		}
	}
	rogueID := f.Member(f.rogue).ID
	for _, i := range f.Live() {
		ct := tallyOf(chatOutcomes(t, f.Node(i), f.GroupID), rogueID)
		t.Logf("node%d: the rogue's entries in the log: %d accepted (%d bytes), %d rejected (%d bytes)", i, ct.accepted, ct.acceptedBytes, ct.rejected, ct.rejectedBytes)
		if grown := ct.acceptedBytes + ct.rejectedBytes; grown > state.MinBytesPerDay {
			t.Fatalf("node%d: the rogue grew the log by %d bytes, its quota is %d: %v", i, grown, state.MinBytesPerDay, ct.reasons)
		}
		if ct.acceptedBytes <= state.MinBytesPerDay-2*(crypto.MaxBody+4096) {
			t.Fatalf("node%d: the rogue got only %d bytes in, not its quota of %d: the flood did not reach it", i, ct.acceptedBytes, state.MinBytesPerDay)
		}
	}

	// The outsider: refused, limited, counted; logged once a minute at
	// most per reason (the bound is in minutes of the test, however slow).
	if fl.code(http.StatusTooManyRequests) == 0 || fl.code(http.StatusOK) != 0 {
		t.Fatalf("the outsider's requests: %d answered 429, %d accepted", fl.code(http.StatusTooManyRequests), fl.code(http.StatusOK))
	}
	maxLines := 2 + int(elapsed/time.Minute)
	for _, i := range f.Live() {
		rej := f.Node(i).Status().Rejected
		if rej["source rate-limited"] == 0 || rej["sender is not a member"] == 0 {
			t.Fatalf("node%d counts %d refusals for the rate limit and %d strangers", i, rej["source rate-limited"], rej["sender is not a member"])
		}
		lines := f.logs[i].Since(offsets[i])
		for _, reason := range []string{"source rate-limited", "sender is not a member"} {
			if n := strings.Count(lines, fmt.Sprintf("%q:%q", "reason", reason)); n > maxLines {
				t.Fatalf("node%d logged %q %d times for %d refusals, want at most %d lines", i, reason, n, rej[reason], maxLines)
			}
		}
	}
}

// timeSends sends n messages from the live members in turn, each waiting
// until committed on its sender, after a few untimed ones, and returns how
// long each took.
func (f *floodGroup) timeSends(tb testing.TB, what string, n int) []time.Duration {
	const warmup = 10
	live := f.Live()
	var out []time.Duration
	for k := range warmup + n {
		i := live[k%len(live)]
		start := time.Now()
		m, err := f.Send(ctxT(tb, 40*time.Second), i, fmt.Sprintf("%s %d", what, k), 30*time.Second)
		if err != nil || m.State != node.StateCommitted {
			tb.Fatalf("%s message %d: %s, %v", what, k, m.State, err)
		}
		if k >= warmup {
			out = append(out, time.Since(start))
		}
	}
	slices.Sort(out)
	return out
}

func pct(d []time.Duration, p float64) float64 {
	return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Millisecond)
}

// BenchmarkFlood times honest messages, from Send until committed on the
// sender, in a group of four members on HTTP over loopback (the rogue's
// node down: three live members, three voters), the senders in turn: quiet,
// then under the flood of TestFlood (the rogue sending proposals it signed
// before, the outsider frames made before, two goroutines each, in this
// process), three rounds of each in turn, so that a change in the machine's
// load falls on both. After the first round the rogue is over its quota and
// the outsider's address out of tokens: the steady state of a flood. It
// runs once, however large b.N; run it with
//
//	go test -run xxx -bench Flood -benchtime 1x ./node/
func BenchmarkFlood(b *testing.B) {
	f := newFloodGroup(b, 4, 3, node.GroupSettings{BytesPerDay: state.MinBytesPerDay})
	epoch := f.rogueDown()
	const rounds, n = 3, 50
	var quiet, flooded []time.Duration
	var rogueSent, outsiderSent, refused int64
	for range rounds {
		quiet = append(quiet, f.timeSends(b, "quiet", n)...)
		fl := f.startFlood(epoch, 2, 2, 300)
		flooded = append(flooded, f.timeSends(b, "flooded", n)...)
		fl.stop()
		rogueSent += fl.rogueSent.Load()
		outsiderSent += fl.outsiderSent.Load()
		refused += fl.code(http.StatusTooManyRequests)
	}
	slices.Sort(quiet)
	slices.Sort(flooded)
	b.ReportMetric(pct(quiet, 0.5), "quiet-ms-p50")
	b.ReportMetric(pct(quiet, 0.99), "quiet-ms-p99")
	b.ReportMetric(pct(flooded, 0.5), "flood-ms-p50")
	b.ReportMetric(pct(flooded, 0.99), "flood-ms-p99")
	b.ReportMetric(pct(flooded, 0.5)/pct(quiet, 0.5), "p50-ratio")
	b.Logf("quiet: p50 %.2f ms, p99 %.2f ms; under flood: p50 %.2f ms, p99 %.2f ms; the rogue sent %d proposals, the outsider %d frames; %d answered 429",
		pct(quiet, 0.5), pct(quiet, 0.99), pct(flooded, 0.5), pct(flooded, 0.99), rogueSent, outsiderSent, refused)
	rej := map[string]int64{}
	for _, i := range f.Live() {
		for k, v := range f.Node(i).Status().Rejected {
			rej[k] += v
		}
	}
	b.Logf("refusals counted by the members: %v", rej)
}
