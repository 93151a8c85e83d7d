package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// node, peer queue, ping and simulated delivery must stop when its test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
