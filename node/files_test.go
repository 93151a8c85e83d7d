package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
	"github.com/demes/demes/state"
)

// fileMarker is written all through the test file: no file a node stores
// may hold it.
const fileMarker = "PLAINTEXT-MARKER-of-the-attachment"

// testFile returns size bytes: the marker over and over, with a counter so
// that no two 64 KiB chunks are alike.
func testFile(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		b.WriteString(fileMarker)
		b.WriteByte(byte(i))
	}
	return b.Bytes()[:size]
}

// download reads the file of message id on node i, waiting until it
// arrived: up to 3 minutes, for TestAttachments' 10 MiB fetched twice (the
// corrupted copy first). Alone that takes a few seconds; under -race at a
// load of 13, beside other cluster tests, one 10 MiB fetch took 33 s.
func (c *cluster) download(i int, id string) []byte {
	c.t.Helper()
	var got []byte
	c.Eventually(c.t, 3*time.Minute, "the file arrives on node"+string(rune('0'+i)), func() bool {
		// The context bounds how long the test waits for the node to look
		// the message up on the group's goroutine: over 10 s on a loaded
		// machine ("open the file: context deadline exceeded").
		_, r, err := c.Node(i).OpenFile(ctxT(c.t, time.Minute), c.GroupID, id)
		var nr *node.NotReadyError
		if errors.As(err, &nr) || errors.Is(err, node.ErrNotFound) {
			return false // not here yet, or still arriving
		}
		if err != nil {
			c.t.Fatalf("node%d: open the file: %v", i, err)
		}
		defer r.Close()
		if got, err = io.ReadAll(r); err != nil {
			c.t.Fatalf("node%d: read the file: %v", i, err)
		}
		return true
	})
	return got
}

// blobs lists the blobs in node i's store.
func (c *cluster) blobs(i int) []string {
	c.t.Helper()
	es, err := os.ReadDir(filepath.Join(c.Member(i).Dir, "blobs"))
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestAttachments: a 10 MB file attached on node0 arrives byte for byte on
// node1 and node2; no file any node writes holds its plaintext; a second
// message naming the same file stores nothing more; a member serving a
// corrupted blob is passed over for another; a stranger's request is
// refused; a file over the limit is refused and nothing is stored.
func TestAttachments(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 2101, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	// node2 is away while the file is sent: it fetches it once back.
	c.Stop(2)
	data := testFile(10 << 20)
	ctx := ctxT(t, 60*time.Second)
	m, err := c.Node(0).SendFile(ctx, c.GroupID, "report.bin", "application/octet-stream", int64(len(data)), bytes.NewReader(data), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attachment == nil || m.Attachment.Name != "report.bin" || m.Attachment.Size != int64(len(data)) || !m.Attachment.Ready {
		t.Fatalf("the sent message shows the attachment %+v", m.Attachment)
	}
	if got := c.download(1, m.ID); !bytes.Equal(got, data) {
		t.Fatalf("node1 downloaded %d bytes that differ from the %d sent", len(got), len(data))
	}
	// Listed with the attachment, ready on node1.
	ms, err := c.Node(1).Messages(c.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if last := ms[len(ms)-1]; last.ID != m.ID || last.Attachment == nil || last.Attachment.Name != "report.bin" || last.Text != "report.bin" {
		t.Fatalf("node1 lists %+v last", last)
	}

	// node0 now serves garbage of the right size: node2 asks the author
	// first, refuses what it gets, and takes the file from node1.
	blob := filepath.Join(c.Member(0).Dir, "blobs", m.Attachment.Blob)
	good, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(blob, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(2)
	if got := c.download(2, m.ID); !bytes.Equal(got, data) {
		t.Fatalf("node2 downloaded %d bytes that differ from the %d sent", len(got), len(data))
	}
	if n := c.Node(2).Status().Rejected["file does not match its id"]; n < 1 {
		t.Fatalf("node2 counted %d corrupted files served; it was served one by node0", n)
	}
	if err := os.WriteFile(blob, good, 0o600); err != nil {
		t.Fatal(err)
	}

	// No plaintext anywhere in any node's files.
	for i := 0; i < 3; i++ {
		filepath.WalkDir(c.Member(i).Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(fileMarker)) {
				t.Errorf("node%d's %s holds the file's plaintext", i, p)
			}
			return nil
		})
		if fi, err := os.Stat(filepath.Join(c.Member(i).Dir, "blobs")); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("node%d's blob directory: %v %v", i, fi.Mode(), err)
		}
	}

	// A second message naming the same file: still one blob per node.
	// A context of its own here and below: the test's first one, for the
	// send, may have run out during the downloads on a loaded machine.
	ref, err := c.Node(0).FileRefOf(ctxT(t, 60*time.Second), c.GroupID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	again := c.post(0, content.Content{Kind: content.File, File: ref})
	if got := c.download(1, again.ID); !bytes.Equal(got, data) {
		t.Fatal("the forwarded file differs")
	}
	for i := 0; i < 3; i++ {
		if b := c.blobs(i); len(b) != 1 || b[0] != m.Attachment.Blob {
			t.Errorf("node%d stores %v, want the one blob %s", i, b, m.Attachment.Blob)
		}
	}

	// A member's request is answered; the same request by a stranger is
	// refused.
	var id [32]byte
	copy(id[:], ref.Blob[:])
	ask := func(who *identity.Identity) error {
		payload, err := state.Encode(&struct {
			_      struct{} `cbor:",toarray"`
			Blob   []byte
			Offset uint64
			Length uint64
		}{Blob: id[:], Offset: 0, Length: 1024})
		if err != nil {
			t.Fatal(err)
		}
		gid, err := crypto.ParseGroupID(c.GroupID)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := crypto.Sign(who, &crypto.Envelope{Type: crypto.TypeBlobGet, Group: gid, To: c.Member(0).ID.Public().Sign, Counter: uint64(time.Now().UnixNano()), Time: time.Now().UnixNano(), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Node(0).HandleFrame(context.Background(), frame)
		return err
	}
	if err := ask(c.Member(1).ID); err != nil {
		t.Fatalf("a member's request for the file was refused: %v", err)
	}
	// A blob no message of the group names is not served, even to a member.
	real := id
	id[0] ^= 1
	if err := ask(c.Member(1).ID); err == nil {
		t.Fatal("a member's request for a blob the group does not name was answered")
	}
	id = real
	stranger, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := ask(stranger); err == nil {
		t.Fatal("a stranger's request for the file was answered")
	}

	// Over the limit: refused, by its announced size and as it streams,
	// with nothing stored.
	_, err = c.Node(1).SendFile(ctxT(t, 60*time.Second), c.GroupID, "big.bin", "", 30<<20, bytes.NewReader(nil), time.Second)
	if !errors.Is(err, node.ErrTooLarge) || !strings.Contains(err.Error(), "the file is 30 MB; the limit is 25 MB") {
		t.Fatalf("a 30 MB file: %v", err)
	}
	// One byte over reads as one byte over, not "25 MB; the limit is 25 MB".
	_, err = c.Node(1).SendFile(ctxT(t, 60*time.Second), c.GroupID, "big.bin", "", 25<<20+1, bytes.NewReader(nil), time.Second)
	if !errors.Is(err, node.ErrTooLarge) || !strings.Contains(err.Error(), "the file is 26214401 bytes; the limit is 26214400 bytes (25 MB)") {
		t.Fatalf("a file one byte over: %v", err)
	}
	_, err = c.Node(1).SendFile(ctxT(t, 60*time.Second), c.GroupID, "big.bin", "", -1, io.LimitReader(zeros{}, 26<<20), time.Second)
	if !errors.Is(err, node.ErrTooLarge) || !strings.Contains(err.Error(), "the file is 26 MB") {
		t.Fatalf("a 26 MB file of unknown size: %v", err)
	}
	if b := c.blobs(1); len(b) != 1 {
		t.Errorf("node1 stores %v after refusing files", b)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestAttachmentAllowance: a node fetches by itself at most its daily
// allowance of one author's files (so that one member cannot fill every
// member's disk); a file beyond it is listed as skipped, and opening it
// fetches it.
func TestAttachmentAllowance(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 2, 2102, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		c.Member(1).Tweak = func(cfg *node.Config) { cfg.AttachmentsPerDay = 3 << 20 }
	})
	c.form()
	ctx := ctxT(t, 60*time.Second)
	send := func(name string, data []byte) string {
		m, err := c.Node(0).SendFile(ctx, c.GroupID, name, "application/octet-stream", int64(len(data)), bytes.NewReader(data), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	first, second := testFile(2<<20), testFile(2<<20+1)
	a := send("first.bin", first)
	b := send("second.bin", second)
	attachment := func(id string) (ready, skipped bool) {
		ms, err := c.Node(1).ListedWithFiles(c.GroupID)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.ID == id && m.Attachment != nil {
				return m.Attachment.Ready, m.Attachment.Skipped
			}
		}
		return false, false
	}
	c.Eventually(t, 30*time.Second, "the first file fetched by node1 itself", func() bool { r, _ := attachment(a); return r })
	c.Eventually(t, 30*time.Second, "the second listed as skipped", func() bool { _, s := attachment(b); return s })
	if r, _ := attachment(b); r || len(c.blobs(1)) != 1 {
		t.Fatalf("node1 fetched a file over the author's allowance (%d blobs)", len(c.blobs(1)))
	}
	// Opening it fetches it.
	if got := c.download(1, b); !bytes.Equal(got, second) {
		t.Fatal("the skipped file differs once opened")
	}
	if _, s := attachment(b); s {
		t.Fatal("a fetched file is still listed as skipped")
	}
}
