package node_test

import (
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// signBatch is what a member's transport sends: the raft messages msgs in
// one batch envelope of group gid, signed by signer, addressed to to, with
// the envelope counter counter and the time now.
func signBatch(t testing.TB, signer *identity.Identity, gid crypto.GroupID, to [32]byte, counter uint64, msgs ...*pb.Message) []byte {
	t.Helper()
	var items [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, b)
	}
	payload, err := crypto.EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	f, err := crypto.Sign(signer, &crypto.Envelope{Type: crypto.TypeBatch, Group: gid, To: to, Counter: counter, Time: time.Now().UnixNano(), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return f
}
