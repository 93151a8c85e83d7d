package node

import (
	"context"

	"github.com/demes/demes/content"
)

// FileRefOf returns the file the message names, key included (tests
// forward it in a second message).
func (n *Node) FileRefOf(ctx context.Context, groupID, messageID string) (*content.FileRef, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	ref, _, err := n.fileOf(ctx, g, messageID)
	return ref, err
}

// ListedWithFiles returns the group's messages as the local API lists
// them: with whether this node holds each attachment (Service does that).
func (n *Node) ListedWithFiles(groupID string) ([]Message, error) {
	ms, err := n.Messages(groupID)
	n.files.decorateAll(ms)
	return ms, err
}
