package node

import (
	"context"
	"fmt"
)

// Transcript returns the group's signed transcript.
func (n *Node) Transcript(ctx context.Context, groupID string) ([]byte, error) {
	return nil, fmt.Errorf("transcripts are not implemented yet: %w", ErrInvalid)
}
