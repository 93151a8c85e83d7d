// Package bench measures the figures of docs/BENCHMARKS.md: host failover
// with real `demes serve` processes, send -> committed latency and
// throughput over real HTTP with bbolt fsync, scaling to groups of 100 on
// the simulated network, and latency-aware host placement.
//
// Every measurement is a function that takes an options struct and returns
// a result with the raw samples and the summary figures, so that the same
// code runs from `demes bench` and from the Benchmark functions of this
// package (`go test -run xxx -bench . -benchtime 1x ./bench/`).
//
// # Reading the figures
//
// The machines these run on have two cores and are shared, so the
// measurements report medians and 99th percentiles from one run, and rates
// rather than single timings. A [Figure] holds one line of the table: its
// name, the median (or the rate), the 99th percentile, the target and
// whether it was met.
//
// # What each function needs
//
//   - [Failover] runs three `demes serve` processes of a binary it is given
//     and kills the host with SIGKILL, again and again.
//   - [Latency] and [Throughput] run in-process nodes ([node.Node]) that talk
//     over real HTTP on loopback ([node.HTTPLink]) and fsync their stores.
//   - [Scale] and [Election] run in-process nodes on the simulated network
//     (package simnet), where latency is emulated inside the process.
//   - [Chaos] runs the seeded fault schedules of package chaos and counts
//     those after which a delivery guarantee did not hold.
//   - [Ceiling] runs the reference ceiling: five raft nodes in this
//     process with fsynced bbolt stores exchanging signed batches of
//     signed entries, without anything else of DeMeS, and times a
//     signature check. Machines of one kind differ (issue 20), so the
//     latency and capacity figures are also given as ratios to it
//     ([CeilingResult.LatencyRatio], [CeilingResult.CapacityRatio]).
package bench
