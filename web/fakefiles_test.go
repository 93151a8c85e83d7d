package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// fakeFileLimit is the fake nodes' attachment limit.
const fakeFileLimit = 1 << 20

// fakeFiles are the fake nodes' attachments, by message id, shared by the
// world's nodes as if every member had fetched them; a message id in
// fakeArriving is still being fetched.
var fakeFiles = struct {
	sync.Mutex
	data     map[string][]byte
	arriving map[string]bool
	// onOpen, when set, runs (unlocked) at the start of each OpenFile.
	onOpen func(messageID string)
}{data: map[string][]byte{}, arriving: map[string]bool{}}

// SendFile implements Backend: the file is kept as it is (a fake has no
// blobs) and its message committed, in a group with a quorum.
func (n *fakeNode) SendFile(ctx context.Context, groupID, name, mediaType string, size int64, r io.Reader, wait time.Duration) (api.Message, error) {
	if err := content.CheckFileName(name); err != nil {
		return api.Message{}, fmt.Errorf("%v: %w", err, api.ErrInvalid)
	}
	if size > fakeFileLimit {
		return api.Message{}, fmt.Errorf("the file is %d bytes; the limit is %d bytes: %w", size, fakeFileLimit, api.ErrTooLarge)
	}
	data, err := io.ReadAll(io.LimitReader(r, fakeFileLimit+1))
	if err != nil {
		return api.Message{}, err
	}
	if len(data) > fakeFileLimit {
		return api.Message{}, fmt.Errorf("the file is over %d bytes; the limit is %d bytes: %w", fakeFileLimit, fakeFileLimit, api.ErrTooLarge)
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	ref := &content.FileRef{Name: name, Type: mediaType, Size: int64(len(data)), BlobSize: int64(len(data)) + 200, Key: "AGE-SECRET-KEY-1FAKE"}
	rand.Read(ref.Blob[:])
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if err := n.checkLocked(); err != nil {
		return api.Message{}, err
	}
	g, err := n.groupLocked(groupID)
	if err != nil {
		return api.Message{}, err
	}
	m := api.Message{
		ID: randomHex(16), Author: n.pub.String(), Name: n.name,
		SentAt: time.Now().UTC().Truncate(time.Millisecond), GroupID: g.id,
	}
	content.Show(&m, content.Content{Kind: content.File, File: ref}, nil)
	m.Attachment.Ready = true
	fakeFiles.Lock()
	fakeFiles.data[m.ID] = data
	fakeFiles.Unlock()
	return n.w.commitLocked(g, m), nil
}

// OpenFile implements Backend.
func (n *fakeNode) OpenFile(ctx context.Context, groupID, messageID string) (api.Attachment, io.ReadCloser, error) {
	n.w.mu.Lock()
	var a *api.Attachment
	g, err := n.groupLocked(groupID)
	if err == nil {
		for _, m := range g.log {
			if m.ID == messageID {
				a = m.Attachment
			}
		}
	}
	n.w.mu.Unlock()
	if err != nil {
		return api.Attachment{}, nil, err
	}
	if a == nil {
		return api.Attachment{}, nil, fmt.Errorf("message %s carries no file: %w", messageID, api.ErrNotFound)
	}
	fakeFiles.Lock()
	onOpen := fakeFiles.onOpen
	fakeFiles.Unlock()
	if onOpen != nil {
		onOpen(messageID)
	}
	fakeFiles.Lock()
	defer fakeFiles.Unlock()
	if fakeFiles.arriving[messageID] {
		return *a, nil, &api.NotReadyError{Received: a.Size / 2, Size: a.Size + 200}
	}
	return *a, io.NopCloser(bytes.NewReader(fakeFiles.data[messageID])), nil
}
