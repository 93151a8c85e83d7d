package transcript_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// bench100k is a transcript of 100,000 chat messages among three members,
// every one decrypted by the exporter, with a checkpoint every 100 entries
// and a latency map every 1,000, as a busy group's log would have them.
// Building it seals 100,000 messages, which takes a while, so it is built
// once and shared by the benchmarks.
var bench100k struct {
	once    sync.Once
	doc     []byte
	entries int
	members []identity.PublicID
}

func build100k(b *testing.B) ([]byte, int, []identity.PublicID) {
	bench100k.once.Do(func() {
		const n = 100_000
		ids := []*identity.Identity{transcripttest.Identity(b, 1), transcripttest.Identity(b, 2), transcripttest.Identity(b, 3)}
		for _, id := range ids {
			bench100k.members = append(bench100k.members, id.Public())
		}
		// DEMES_BENCH_TRANSCRIPT names a file to keep the transcript in
		// between runs, when measuring again and again.
		cache := os.Getenv("DEMES_BENCH_TRANSCRIPT")
		if cache != "" {
			if doc, err := os.ReadFile(cache); err == nil {
				bench100k.doc = doc
				bench100k.entries = bytes.Count(doc, []byte(`{"index":`)) - n
				return
			}
		}
		g := transcripttest.New(b, transcripttest.GroupID(100), "busy", ids[0], "m0")
		g.Add(ids[0], ids[1], "m1")
		g.Add(ids[0], ids[2], "m2")
		// The members send far faster than a group's default quota allows
		// (the log's clock moves a millisecond an entry): lift it.
		g.Append(g.Sign(ids[0], crypto.TypeSettings, &state.SettingsBody{MsgsPerMinute: 1 << 30, BytesPerDay: 1 << 40}))

		// One message from each member registers its sender key; then seal
		// the rest on every core: the member set does not change, so they
		// carry no key header and do not depend on each other.
		for _, id := range ids {
			g.Chat(id, "hello")
		}
		frames := make([][]byte, n-len(ids))
		msgIDs := make([][16]byte, len(frames))
		for i := range msgIDs {
			msgIDs[i] = g.NextMessageID()
		}
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(frames); i += workers {
					frames[i] = g.ChatFrame(ids[i%3], msgIDs[i], fmt.Sprintf("message %d: the quick brown fox jumps over the lazy dog", i))
				}
			}()
		}
		wg.Wait()
		for i, f := range frames {
			if r := g.Append(f); r.Err != nil {
				b.Fatalf("message %d rejected: %v", i, r.Err)
			}
			if i%100 == 99 {
				g.Checkpoint(ids[(i/100)%3])
			}
			if i%1000 == 999 {
				m := (i / 1000) % 3
				g.Latency(ids[m], []*identity.Identity{ids[(m+1)%3], ids[(m+2)%3]}, []uint32{800, 1200})
			}
		}
		bench100k.doc = g.Build(ids[0], ids[1], ids[2])
		bench100k.entries = len(g.Entries)
		if cache != "" {
			if err := os.WriteFile(cache, bench100k.doc, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
	return bench100k.doc, bench100k.entries, bench100k.members
}

// BenchmarkVerify100k verifies a transcript of 100,000 messages. Run it with
//
//	go test ./transcript -run XXX -bench Verify100k -benchtime 3x
//
// entries/s counts log entries (each chat entry also has a decrypted message
// whose record signature is checked, so two signatures per message). On a
// shared machine, entries/s-idle is the rate the process's CPU time allows on
// all its cores: what an otherwise idle machine would measure, when the
// verification keeps every core busy.
func BenchmarkVerify100k(b *testing.B) {
	doc, entries, members := build100k(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	cpu := testutil.CPUTime()
	for b.Loop() {
		s, err := transcript.Verify(doc, members)
		if err != nil {
			b.Fatal(err)
		}
		if s.Messages != 100_000 {
			b.Fatalf("%d messages", s.Messages)
		}
	}
	cpu = testutil.CPUTime() - cpu
	b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	if cpu > 0 {
		// What the machine's cores would do if the benchmark had them to
		// itself: entries per CPU-second, times the cores it may use.
		b.ReportMetric(float64(entries)*float64(b.N)/cpu.Seconds(), "entries/cpu-s")
		b.ReportMetric(float64(entries)*float64(b.N)*float64(runtime.GOMAXPROCS(0))/cpu.Seconds(), "entries/s-idle")
	}
}
