package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/nodetest"
	"github.com/demes/demes/state"
)

// BenchmarkOutsiderFrame measures what one frame from an outsider costs a
// member's peer handler: junk, and validly signed batches from a key that is
// no member's, small and large, and a frame that claims a member's key but
// whose signature does not verify. Run with
//
//	go test -run xxx -bench OutsiderFrame ./node/
func BenchmarkOutsiderFrame(b *testing.B) {
	c, err := nodetest.New(nodetest.Options{Size: 1, Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	if err := c.StartAll(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Form(ctx, nodetest.FormOptions{}); err != nil {
		b.Fatal(err)
	}
	n := c.Node(0)
	gid, _ := crypto.ParseGroupID(c.GroupID)
	member := c.Member(0).ID
	self := member.Public().Sign
	outsider, _ := identity.FromSeed(bytes.Repeat([]byte{0xee}, 32))
	batch := func(signer *identity.Identity, size int) []byte {
		m := &pb.Message{Type: pb.MsgProp.Enum(), From: proto.Uint64(state.RaftID(signer.Public().Sign)), To: proto.Uint64(state.RaftID(self)),
			Entries: []*pb.Entry{{Type: pb.EntryNormal.Enum(), Data: make([]byte, size)}}}
		return signBatch(b, signer, gid, self, uint64(time.Now().UnixNano()), m)
	}
	junk := func(size int) []byte {
		f := make([]byte, size)
		rand.Read(f)
		f[0] = crypto.Version
		return f
	}
	forged := batch(member, 1<<20)
	forged[len(forged)-1] ^= 1
	h := n.PeerHandler()
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"junk-300B", junk(300)},
		{"junk-1MiB", junk(1 << 20)},
		{"non-member-300B", batch(outsider, 200)},
		{"non-member-1MiB", batch(outsider, 1<<20)},
		{"member-key-bad-signature-1MiB", forged},
	} {
		// The checks alone, as a frame from the simulated network meets
		// them.
		b.Run("checks/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.frame)))
			for b.Loop() {
				if _, err := n.HandleFrame(ctx, tc.frame); err == nil {
					b.Fatal("accepted")
				}
			}
		})
		// The peer listener, one source sending this frame again and
		// again: the steady state of a flood from one address.
		b.Run("http/"+tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.frame)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, node.PeerPath, bytes.NewReader(tc.frame))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code == http.StatusOK {
					b.Fatal("accepted")
				}
			}
		})
	}
}
