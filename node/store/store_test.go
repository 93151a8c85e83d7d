package store

import (
	"path/filepath"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func entry(index, term uint64, data string) *pb.Entry {
	return &pb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term), Type: pb.EntryNormal.Enum(), Data: []byte(data)}
}

func TestRaftLogSurvivesReopenAndTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	gid := []byte("0123456789abcdef")
	if err := s.CreateGroup(gid, []byte(`{"name":"g"}`)); err != nil {
		t.Fatal(err)
	}
	hs := &pb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(2)}
	if err := s.SaveRaft(gid, hs, []*pb.Entry{entry(1, 1, "a"), entry(2, 1, "b"), entry(3, 1, "c")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the uncommitted tail from index 3.
	if err := s.SaveRaft(gid, nil, []*pb.Entry{entry(3, 2, "C")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// Queued messages ride along with the next write; one sent and
	// committed within the same Ready is dropped.
	put := []OutboxItem{{ID: []byte("id1"), Frame: []byte("sealed")}, {ID: []byte("id2"), Frame: []byte("gone")}}
	if err := s.SaveRaft(gid, nil, nil, put, [][]byte{[]byte("id2")}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gotHS, ents, err := s.LoadRaft(gid)
	if err != nil {
		t.Fatal(err)
	}
	if gotHS.GetTerm() != 2 || gotHS.GetCommit() != 2 || gotHS.GetVote() != 1 {
		t.Fatalf("hard state %v", gotHS)
	}
	var got string
	for _, e := range ents {
		got += string(e.GetData())
	}
	if got != "abC" || ents[2].GetTerm() != 2 {
		t.Fatalf("log %q", got)
	}
	ob, err := s.Outbox(gid)
	if err != nil || string(ob["id1"]) != "sealed" {
		t.Fatalf("outbox %v %v", ob, err)
	}
	groups, err := s.Groups()
	if err != nil || string(groups[string(gid)]) != `{"name":"g"}` {
		t.Fatalf("groups %v %v", groups, err)
	}
	if len(ob) != 1 {
		t.Fatalf("outbox holds %d messages, want only id1: %v", len(ob), ob)
	}
	if err := s.SaveRaft(gid, nil, nil, nil, [][]byte{[]byte("id1")}); err != nil {
		t.Fatal(err)
	}
	if ob, _ := s.Outbox(gid); len(ob) != 0 {
		t.Fatalf("outbox after delete: %v", ob)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("a second process could open the same store")
	}
}
