package node

import pb "go.etcd.io/raft/v3/raftpb"

// coalesce merges the raft messages of one Ready that say, together, what a
// single message would: raft sends an append to each follower for every
// proposal it takes and every commit it learns of, and a follower answers
// every append, so that under load a Ready holds many small messages to
// each peer (about eight appends per follower per host Ready in the
// throughput benchmark), each of them marshalled, checked and stepped by
// the receiver, and each append answered on its own.
//
// Two messages to the same peer are merged only when the second follows on
// from the first, so that the merged one is exactly the message raft would
// have sent had it sent once:
//   - appends of the same term whose entries continue each other (the
//     second's previous index and term are the first's last entry) become
//     one append with both runs of entries and the later commit index, up
//     to maxBytes of entry data. The follower answers it once, with the
//     last index, which acknowledges every entry of both (raft frees its
//     in-flight count up to that index);
//   - acknowledgements of appends (not rejections) of the same term become
//     the latest, which acknowledges everything the earlier ones did.
//
// Anything else (votes, heartbeats, rejections, forwarded proposals) is
// kept as it is, and messages keep their order per peer. coalesce never
// changes a slice raft still holds: a merged message gets a new entry
// slice.
func coalesce(msgs []*pb.Message, maxBytes uint64) []*pb.Message {
	if len(msgs) < 2 {
		return msgs
	}
	out := make([]*pb.Message, 0, len(msgs))
	last := map[uint64]int{} // peer -> index in out of its latest message
	// size holds the entry bytes of the appends merged into so far.
	size := map[int]uint64{}
	for _, m := range msgs {
		if i, ok := last[m.GetTo()]; ok && merge(out[i], m, size, i, maxBytes) {
			continue
		}
		last[m.GetTo()] = len(out)
		out = append(out, m)
	}
	return out
}

// merge folds m into p, the latest message to the same peer, when m follows
// on from p (see coalesce), and reports whether it did.
func merge(p, m *pb.Message, size map[int]uint64, i int, maxBytes uint64) bool {
	if p.GetType() != m.GetType() || p.GetTerm() != m.GetTerm() || p.GetFrom() != m.GetFrom() {
		return false
	}
	switch p.GetType() {
	case pb.MsgApp:
		if m.GetIndex() != p.GetIndex()+uint64(len(p.GetEntries())) || m.GetLogTerm() != lastTerm(p) {
			return false
		}
		s, ok := size[i]
		if !ok {
			s = entryBytes(p.GetEntries())
		}
		s += entryBytes(m.GetEntries())
		if s > maxBytes && len(p.GetEntries()) > 0 && len(m.GetEntries()) > 0 {
			return false
		}
		size[i] = s
		if len(m.GetEntries()) > 0 {
			ents := make([]*pb.Entry, 0, len(p.GetEntries())+len(m.GetEntries()))
			p.Entries = append(append(ents, p.GetEntries()...), m.GetEntries()...)
		}
		p.Commit = new(max(p.GetCommit(), m.GetCommit()))
		return true
	case pb.MsgAppResp:
		if p.GetReject() || m.GetReject() || m.GetIndex() < p.GetIndex() {
			return false
		}
		p.Index = new(m.GetIndex())
		return true
	}
	return false
}

// lastTerm returns the term of the last entry an append leaves the
// follower with: its last entry's, or for an empty one, the term of its
// previous entry.
func lastTerm(m *pb.Message) uint64 {
	if ents := m.GetEntries(); len(ents) > 0 {
		return ents[len(ents)-1].GetTerm()
	}
	return m.GetLogTerm()
}

func entryBytes(ents []*pb.Entry) uint64 {
	var n uint64
	for _, e := range ents {
		n += uint64(len(e.GetData()))
	}
	return n
}
