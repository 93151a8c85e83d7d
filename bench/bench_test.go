package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Benchmark functions run short versions of the measurements of `demes
// bench` and report their figures as metrics. Each runs its measurement
// once, however large b.N is; run them with
//
//	go test -run xxx -bench . -benchtime 1x ./bench/
//
// They are skipped in -short mode. The figures in docs/BENCHMARKS.md come
// from `demes bench all`, which runs the long versions.

func skipShort(b *testing.B) {
	if testing.Short() {
		b.Skip("macro benchmark; skipped in -short mode")
	}
}

func benchCtx(b *testing.B, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	b.Cleanup(cancel)
	return ctx
}

// report logs the figures as the table `demes bench` prints.
func report(b *testing.B, figs []Figure) {
	b.Helper()
	var sb strings.Builder
	if err := PrintTable(&sb, figs); err != nil {
		b.Fatal(err)
	}
	b.Log("\n" + sb.String())
}

func BenchmarkLatency3(b *testing.B) { benchLatency(b, 3) }
func BenchmarkLatency5(b *testing.B) { benchLatency(b, 5) }

func benchLatency(b *testing.B, nodes int) {
	skipShort(b)
	r, err := Latency(benchCtx(b, 2*time.Minute), LatencyOptions{Nodes: nodes, Messages: 100})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(r.Everywhere.Median()), "ms-p50")
	b.ReportMetric(ms(r.Everywhere.P99()), "ms-p99")
	report(b, r.Figures())
}

// The throughput benchmarks run once per number of senders (sub-benchmarks
// senders=64 and senders=256), as `demes bench throughput` does.
var throughputSenders = []int{64, 256}

func BenchmarkThroughput5(b *testing.B) {
	skipShort(b)
	for _, n := range throughputSenders {
		b.Run(fmt.Sprintf("senders=%d", n), func(b *testing.B) {
			r, err := Throughput(benchCtx(b, 2*time.Minute), ThroughputOptions{Nodes: 5, Senders: n, Duration: 5 * time.Second})
			reportThroughput(b, r, err)
		})
	}
}

func reportThroughput(b *testing.B, r ThroughputResult, err error) {
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(r.Rate(), "msg/s")
	b.ReportMetric(ms(r.CPUPerMessage()), "cpu-ms/msg")
	report(b, r.Figures())
}

func BenchmarkThroughput5Processes(b *testing.B) {
	skipShort(b)
	bin := demesBinary(b)
	for _, n := range throughputSenders {
		b.Run(fmt.Sprintf("senders=%d", n), func(b *testing.B) {
			r, err := ThroughputProcesses(benchCtx(b, 3*time.Minute), ThroughputOptions{Nodes: 5, Senders: n, Duration: 5 * time.Second, Binary: bin})
			reportThroughput(b, r, err)
		})
	}
}

func BenchmarkScale(b *testing.B) {
	skipShort(b)
	r, err := Scale(benchCtx(b, 10*time.Minute), ScaleOptions{Sizes: []int{3, 10, 50}, Messages: 10, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range r.Points {
		b.ReportMetric(ms(p.Delivered.Median()), fmt.Sprintf("ms-p50-%d", p.Members))
		b.ReportMetric(float64(p.CPUPerDelivery())/1e3, fmt.Sprintf("cpu-us/recv-%d", p.Members))
	}
	report(b, r.Figures())
}

// demesBinary builds the demes command once for the benchmarks that run it.
func demesBinary(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "demes")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/demes/demes/cmd/demes")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("build demes: %v", err)
	}
	return bin
}

func BenchmarkFailover(b *testing.B) {
	skipShort(b)
	bin := demesBinary(b)
	r, err := Failover(benchCtx(b, 5*time.Minute), FailoverOptions{Binary: bin, Kills: 5, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(secs(r.Failover.Median()), "s-p50")
	b.ReportMetric(secs(r.Failover.P99()), "s-p99")
	b.ReportMetric(float64(r.Lost), "lost")
	report(b, r.Figures())
}

func BenchmarkRestart(b *testing.B) {
	skipShort(b)
	bin := demesBinary(b)
	r, err := Restart(benchCtx(b, 5*time.Minute), RestartOptions{Binary: bin, Rounds: 5, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(secs(r.Commits.Median()), "s-p50")
	b.ReportMetric(float64(r.Lost), "lost")
	report(b, r.Figures())
}

func BenchmarkElection(b *testing.B) {
	skipShort(b)
	r, err := Election(benchCtx(b, 5*time.Minute), ElectionOptions{Trials: 3, Kills: 3, Jitter: 20 * time.Second, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(secs(r.ToOptimal.Median()), "s-to-optimal")
	b.ReportMetric(secs(r.ToBackup.Median()), "s-to-backup")
	b.ReportMetric(r.ChangesPerMinute(), "changes/min")
	report(b, r.Figures())
}

func BenchmarkChaos(b *testing.B) {
	skipShort(b)
	r, err := Chaos(benchCtx(b, 5*time.Minute), ChaosOptions{Schedules: 3, Progress: os.Stderr})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(r.Violations)+len(r.Errors)), "violations")
	report(b, r.Figures())
}

func BenchmarkCeiling(b *testing.B) {
	skipShort(b)
	r, err := Ceiling(benchCtx(b, 2*time.Minute), CeilingOptions{Messages: 100, Senders: throughputSenders, Duration: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ms(r.Latency.Median()), "ms-p50")
	b.ReportMetric(float64(r.SignatureCheck.Median())/1e3, "us/check")
	for _, run := range r.Runs {
		b.ReportMetric(run.Rate(), fmt.Sprintf("msg/s-%d", run.Senders))
	}
	report(b, r.Figures())
}
