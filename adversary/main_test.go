package adversary

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/demes/demes/node/nodetest"
)

// TestMain runs the attacks all at once (each has its own cluster and mostly
// waits; see nodetest.SetUpTestMain), and fails the package if any goroutine
// outlives them: every node, join attempt and link must stop with its test.
func TestMain(m *testing.M) {
	nodetest.SetUpTestMain()
	goleak.VerifyTestMain(m)
}
