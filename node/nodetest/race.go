//go:build race

package nodetest

// raceEnabled is set when the race detector is on: it makes cluster tests
// five to ten times as costly in CPU, so fewer of them run at once.
const raceEnabled = true
