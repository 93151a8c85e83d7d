package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/transcript"
)

// newCheckpointCluster is newCluster with nodes that checkpoint every few
// entries, so that a short test sees every member's checkpoints.
func newCheckpointCluster(t *testing.T, size int) *cluster {
	return newClusterWith(t, size, 7, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, m := range c.Members() {
			m.Tweak = func(cfg *node.Config) { cfg.RetryInterval, cfg.CheckpointEntries = 100*time.Millisecond, 3 }
		}
	})
}

// TestTranscriptEndToEnd: three members chat; a transcript exported by each
// verifies with its exporter trusted (its own signed head reaches the end),
// and shows each member's messages and checkpoints.
func TestTranscriptEndToEnd(t *testing.T) {
	t.Parallel()
	c := newCheckpointCluster(t, 3)
	gid := c.form()
	// Every member joined before the first message, so each reads them all.
	for round := range 2 {
		for i := range c.Members() {
			c.send(i, fmt.Sprintf("round %d from node%d", round, i), 10*time.Second)
		}
	}
	msgs := c.converged(6)
	for i, tn := range c.Members() {
		trust := []identity.PublicID{tn.ID.Public()}
		var s *transcript.Summary
		// Wait until every member's checkpoint is committed and known here.
		c.Eventually(t, 30*time.Second, fmt.Sprintf("a transcript from %s with checkpoints by every member", tn.Name), func() bool {
			doc, err := c.Node(tn.Index).Transcript(ctxT(t, 30*time.Second), gid, api.TranscriptRange{})
			if err != nil {
				t.Fatalf("export from %s: %v", tn.Name, err)
			}
			s, err = transcript.Verify(doc, trust)
			if err != nil {
				t.Fatalf("verify the transcript of %s: %v", tn.Name, err)
			}
			by := map[identity.PublicID]bool{}
			for _, cp := range s.Checkpoints {
				by[cp.Signer] = true
			}
			return len(by) == 3
		})
		t.Logf("node%d: %d entries (%d rejected), %d messages, %d checkpoints, index %d..%d", i, s.Entries, s.Rejected, s.Messages, len(s.Checkpoints), s.FirstIndex, s.LastIndex)
		if s.Exporter != tn.ID.Public() || s.Name != "test" || s.Messages != len(msgs) || s.Chats != len(msgs) {
			t.Errorf("node%d: exporter %s, name %q, %d messages, %d chats; want %d", i, s.Exporter.Fingerprint(), s.Name, s.Messages, s.Chats, len(msgs))
		}
		if len(s.Authors) != 3 || len(s.Members) != 3 {
			t.Errorf("node%d: %d authors, %d members", i, len(s.Authors), len(s.Members))
		}
		for _, a := range s.Authors {
			if a.Chats != 2 || a.Messages != 2 {
				t.Errorf("node%d: author %s: %d chats, %d decrypted; want 2", i, a.Name, a.Chats, a.Messages)
			}
		}
		if s.LastIndex < msgs[len(msgs)-1].Index {
			t.Errorf("node%d: the transcript ends at %d, before the last message at %d", i, s.LastIndex, msgs[len(msgs)-1].Index)
		}
	}

	// A range, from a message id to a log index: the node resolves both.
	r := api.TranscriptRange{From: msgs[1].ID, To: fmt.Sprint(msgs[2].Index)}
	doc, err := c.Node(0).Transcript(ctxT(t, 30*time.Second), gid, r)
	if err != nil {
		t.Fatalf("export %+v: %v", r, err)
	}
	s, err := transcript.Verify(doc, nil)
	if err != nil {
		t.Fatalf("verify the range %+v: %v", r, err)
	}
	if s.Range == nil || s.Range.From != msgs[1].Index || s.Range.To != msgs[2].Index || s.Messages != 2 {
		t.Errorf("range %+v, %d messages; want %d to %d, 2 messages", s.Range, s.Messages, msgs[1].Index, msgs[2].Index)
	}
	for _, tc := range []struct {
		r    api.TranscriptRange
		want error
	}{
		{api.TranscriptRange{From: "yesterday"}, node.ErrInvalid},
		{api.TranscriptRange{From: msgs[2].ID, To: msgs[1].ID}, node.ErrInvalid},
		{api.TranscriptRange{From: "00112233445566778899aabbccddeeff"}, node.ErrNotFound},
		{api.TranscriptRange{From: "2099-01-01"}, node.ErrNotFound},
	} {
		if _, err := c.Node(0).Transcript(ctxT(t, 30*time.Second), gid, tc.r); !errors.Is(err, tc.want) {
			t.Errorf("export %+v: %v, want %v", tc.r, err, tc.want)
		}
	}
}

func TestTranscriptUnknownGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, 3, simnet.LinkConfig{})
	_, err := c.Node(0).Transcript(ctxT(t, 10*time.Second), "00112233445566778899aabbccddeeff", api.TranscriptRange{})
	if !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	_, err = c.Node(0).Transcript(ctxT(t, 10*time.Second), "not a group", api.TranscriptRange{})
	if !errors.Is(err, node.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}
