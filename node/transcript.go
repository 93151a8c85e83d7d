package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/transcript"
)

// Transcript returns the group's signed transcript (see package transcript):
// every committed entry of the group's log as this node holds it, with the
// messages this member can read (those of the range r only, when it names
// one), signed with this node's identity. It reads the log from the store,
// so the group keeps running meanwhile.
func (n *Node) Transcript(ctx context.Context, groupID string, r api.TranscriptRange) ([]byte, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return nil, err
	}
	opts, err := transcriptOptions(r)
	if err != nil {
		return nil, err
	}
	hs, log, err := n.store.LoadRaft(g.id[:])
	if err != nil {
		return nil, fmt.Errorf("export transcript of group %s: %w", g.id, err)
	}
	// The stored commit index may lag (a Ready that only moves the commit
	// index is not written on its own); what this node has applied is
	// committed, and its entries are on disk.
	commit := max(hs.GetCommit(), g.view.Load().applied)
	entries := transcriptEntries(commit, log)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("export transcript of group %s: %w", g.id, err)
	}
	var attested [][]byte
	if len(entries) > 0 {
		end := entries[len(entries)-1].Index
		if err := g.do(ctx, func() {
			attested = g.attestations(end)
			// The keys this node keeps (keys.go); never nil, so that the
			// builder opens no key header.
			opts.Keys = make([]*crypto.SenderKey, 0, len(g.hist.keys))
			for _, k := range g.hist.keys {
				opts.Keys = append(opts.Keys, k)
			}
		}); err != nil {
			return nil, fmt.Errorf("export transcript of group %s: %w", g.id, err)
		}
	}
	opts.Attestations = attested
	doc, err := transcript.BuildWith(n.id, g.id, entries, opts, time.Now())
	switch {
	case errors.Is(err, transcript.ErrBackwardRange):
		return nil, fmt.Errorf("%w: %w", err, ErrInvalid)
	case errors.Is(err, transcript.ErrEmptyRange), errors.Is(err, transcript.ErrNoSuchMessage):
		return nil, fmt.Errorf("%w: %w", err, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("export transcript of group %s: %w", g.id, err)
	}
	return doc, nil
}

// transcriptOptions reads the ends of a transcript's range.
func transcriptOptions(r api.TranscriptRange) (transcript.Options, error) {
	var opts transcript.Options
	var err error
	if r.From != "" {
		if opts.From, err = transcript.ParseBound(r.From, false); err != nil {
			return opts, fmt.Errorf("the range's start: %v: %w", err, ErrInvalid)
		}
	}
	if r.To != "" {
		if opts.To, err = transcript.ParseBound(r.To, true); err != nil {
			return opts, fmt.Errorf("the range's end: %v: %w", err, ErrInvalid)
		}
	}
	return opts, nil
}

// transcriptEntries picks the committed entries that carry a frame, and the
// raft change of each membership entry, exactly as group.apply hands them to
// the state machine: an entry it applies without a frame changes nothing and
// is not in the transcript chain, so it is not in the transcript either.
func transcriptEntries(commit uint64, log []*pb.Entry) []transcript.Entry {
	var out []transcript.Entry
	for _, e := range log {
		idx := e.GetIndex()
		if idx > commit {
			break // not committed: it may still be replaced
		}
		var te transcript.Entry
		switch e.GetType() {
		case pb.EntryNormal:
			te = transcript.Entry{Index: idx, Kind: transcript.KindEntry, Frame: e.GetData()}
		case pb.EntryConfChange:
			cc := &pb.ConfChange{}
			if proto.Unmarshal(e.GetData(), cc) != nil {
				continue
			}
			te = transcript.Entry{Index: idx, Kind: transcript.KindConf, Change: confKind(cc.GetType()), NodeID: cc.GetNodeId(), Frame: cc.GetContext()}
		case pb.EntryConfChangeV2:
			cc := &pb.ConfChangeV2{}
			if proto.Unmarshal(e.GetData(), cc) != nil || len(cc.GetChanges()) != 1 {
				continue
			}
			c := cc.GetChanges()[0]
			te = transcript.Entry{Index: idx, Kind: transcript.KindConf, Change: confKind(c.GetType()), NodeID: c.GetNodeId(), Frame: cc.GetContext()}
		}
		if len(te.Frame) > 0 {
			out = append(out, te)
		}
	}
	return out
}
