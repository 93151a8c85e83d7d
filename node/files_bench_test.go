package node_test

import (
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
)

// patternReader yields n bytes that never repeat within 64 KiB, from a
// 64 KiB buffer: a large file without holding it in memory.
type patternReader struct {
	buf  []byte
	left int64
	off  int
}

func newPatternReader(n int64) *patternReader {
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	return &patternReader{buf: buf, left: n}
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.left, int64(len(p.buf)-p.off))
	copy(b, p.buf[p.off:p.off+int(n)])
	p.off = (p.off + int(n)) % len(p.buf)
	p.left -= n
	return int(n), nil
}

// BenchmarkAttachment sends a 25 MB file on node0 of two nodes on real HTTP
// over loopback, waits until node1 has fetched it, and downloads it there
// (decrypted as it streams): the rate of each step, and the most heap the
// process held above what it held before (sampled every 5 ms), which shows
// that no step holds the file in memory.
//
//	go test ./node -run '^$' -bench Attachment -benchtime 3x
func BenchmarkAttachment(b *testing.B) {
	const size = 25 << 20
	nc, err := nodetest.New(nodetest.Options{Size: 2, HTTP: true, Dir: b.TempDir(),
		Config: node.Config{Logger: testLogger(b), RetryInterval: 200 * time.Millisecond}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if err := nc.StartAll(); err != nil {
		b.Fatal(err)
	}
	c := &cluster{Cluster: nc, t: b}
	c.form()
	want := sha256.New()
	io.Copy(want, newPatternReader(size))
	var send, fetch, down time.Duration
	var peak atomic.Uint64
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		ctx := ctxT(b, 2*time.Minute)
		t0 := time.Now()
		m, err := c.Node(0).SendFile(ctx, c.GroupID, "big.bin", "", size, newPatternReader(size), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		var r io.ReadCloser
		for {
			_, r, err = c.Node(1).OpenFile(ctx, c.GroupID, m.ID)
			var nr *node.NotReadyError
			if err == nil {
				break
			}
			if !errors.As(err, &nr) && !errors.Is(err, node.ErrNotFound) {
				b.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // polling a benchmark's progress, not a test's condition
		}
		t2 := time.Now()
		got := sha256.New()
		if _, err := io.Copy(got, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
		t3 := time.Now()
		if string(got.Sum(nil)) != string(want.Sum(nil)) {
			b.Fatal("node1 downloaded another file")
		}
		send, fetch, down = send+t1.Sub(t0), fetch+t2.Sub(t1), down+t3.Sub(t2)
	}
	b.StopTimer()
	close(stop)
	<-sampled
	mb := float64(size) / (1 << 20) * float64(b.N)
	b.ReportMetric(mb/send.Seconds(), "send-MB/s")
	b.ReportMetric(mb/fetch.Seconds(), "fetch-MB/s")
	b.ReportMetric(mb/down.Seconds(), "download-MB/s")
	b.ReportMetric(float64(int64(peak.Load())-int64(base))/(1<<20), "peak-heap-MB")
}
