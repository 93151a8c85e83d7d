package node_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/demes/demes/node/nodetest"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// node, peer queue, ping and simulated delivery must stop when its test ends.
// The cluster tests run all at once (see nodetest.SetUpTestMain).
func TestMain(m *testing.M) {
	nodetest.SetUpTestMain()
	goleak.VerifyTestMain(m)
}
