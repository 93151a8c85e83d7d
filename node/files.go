package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/internal/fsutil"
	"github.com/demes/demes/state"
)

// Attachments (issue 21; docs/PROTOCOL.md, "Attachments"). A file is
// encrypted with age to a fresh X25519 identity of its own, and the
// ciphertext (age's STREAM: 64 KiB authenticated chunks) is a blob named by
// its SHA-256, stored once in the node's home under blobs/. The file
// message (content.File) names the blob and carries the identity: it is
// sealed under the sender key like every message, so only the members who
// read the message can read the file. A member that applies a file message
// fetches the blob from the author, or else the other members, in parts
// (files_fetch.go), and keeps it only once its hash matches. No plaintext
// is ever written to disk: a download decrypts as it streams.

// DefaultMaxAttachment is the largest file a node sends or fetches unless
// its Config says otherwise: 25 MB.
const DefaultMaxAttachment = 25 << 20

// ErrTooLarge: a file over the node's attachment limit (the local API
// answers 413).
var ErrTooLarge = api.ErrTooLarge

// NotReadyError is the answer to a download of a file whose blob this node
// is still fetching (the local API answers 409 with the progress).
type NotReadyError = api.NotReadyError

// files is a node's blobs: the store on disk, which blob each group's
// messages name, and the fetches under way.
type files struct {
	n   *Node
	dir string

	mu       sync.Mutex
	byGroup  map[crypto.GroupID]map[[32]byte]bool // blobs a message of the group names
	fetching map[[32]byte]*fetch
	sem      chan struct{} // bounds the fetches that transfer at once
	// spent is, per author, the sizes and times of the blobs this node
	// started fetching by itself in the last day; skipped are the blobs
	// it did not, because their author was over AttachmentsPerDay.
	spent   map[[32]byte][]spend
	skipped map[[32]byte]bool
	// figures for tests and the benchmark
	corrupt int64 // blobs a member served that did not match their id
}

func (f *files) init(n *Node) {
	f.n = n
	f.dir = filepath.Join(n.cfg.Dir, "blobs")
	f.byGroup = map[crypto.GroupID]map[[32]byte]bool{}
	f.fetching = map[[32]byte]*fetch{}
	f.spent = map[[32]byte][]spend{}
	f.skipped = map[[32]byte]bool{}
	f.sem = make(chan struct{}, 2)
	// A crash may leave parts of blobs: they are fetched again.
	if parts, err := filepath.Glob(filepath.Join(f.dir, ".part-*")); err == nil {
		for _, p := range parts {
			os.Remove(p)
		}
	}
}

// path is where the blob id is stored.
func (f *files) path(id [32]byte) string { return filepath.Join(f.dir, hex.EncodeToString(id[:])) }

// has reports whether the blob id is stored.
func (f *files) has(id [32]byte) bool {
	_, err := os.Stat(f.path(id))
	return err == nil
}

// tempFile opens a new temporary file in the blob directory, which it
// creates (0700) if need be.
func (f *files) tempFile() (*os.File, error) {
	if _, err := os.Stat(f.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(f.dir, 0o700); err != nil {
			return nil, fmt.Errorf("create the blob directory: %w", err)
		}
		// The directory's own entry on disk, or a blob in it may be
		// lost with it (see keep).
		if err := fsutil.SyncDir(filepath.Dir(f.dir)); err != nil {
			return nil, fmt.Errorf("create the blob directory: %w", err)
		}
	}
	return os.CreateTemp(f.dir, ".part-*") // mode 0600
}

// keep syncs and closes tmp, which holds the blob id, and renames it to its
// place; a blob stored already stays as it is (stored once).
func (f *files) keep(tmp *os.File, id [32]byte) error {
	err := tmp.Sync()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if f.has(id) {
			err = os.Remove(tmp.Name())
		} else if err = os.Rename(tmp.Name(), f.path(id)); err == nil {
			// The rename on disk too before the file message that names
			// the blob is sent (or the blob is served): after a power
			// loss the blob would be back under its temporary name,
			// which the next start deletes, and nobody could fetch it.
			err = fsutil.SyncDir(f.dir)
		}
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("store the file: %w", err)
	}
	return nil
}

// hold records that a message of the group gid names the blob id: members
// of gid may fetch it here.
func (f *files) hold(gid crypto.GroupID, id [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.byGroup[gid]
	if m == nil {
		m = map[[32]byte]bool{}
		f.byGroup[gid] = m
	}
	m[id] = true
}

// held reports whether a message of the group gid names the blob id.
func (f *files) held(gid crypto.GroupID, id [32]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byGroup[gid][id]
}

// tooLarge is the refusal of a file of size bytes.
func (n *Node) tooLarge(size int64) error {
	is, limit := megabytes(size), megabytes(n.cfg.MaxAttachment)
	if is == limit {
		// Rounded alike ("the file is 25 MB; the limit is 25 MB"): the
		// bytes say which is more.
		return fmt.Errorf("the file is %d bytes; the limit is %d bytes (%s): %w", size, n.cfg.MaxAttachment, limit, ErrTooLarge)
	}
	return fmt.Errorf("the file is %s; the limit is %s: %w", is, limit, ErrTooLarge)
}

// megabytes writes a size the way people read it: 25 MB, 1.5 MB, 300 KB.
func megabytes(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0 || b >= 10<<20:
		return fmt.Sprintf("%d MB", (b+(1<<19))>>20)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%d KB", (b+512)>>10)
	}
	return fmt.Sprintf("%d bytes", b)
}

// SendFile encrypts the file r (of size bytes, or -1 if unknown; name and
// mediaType as the message shows them), stores its blob and sends the file
// message as Send sends a text. A file over the node's limit is refused
// with ErrTooLarge before anything is stored or sent.
func (n *Node) SendFile(ctx context.Context, groupID, name, mediaType string, size int64, r io.Reader, wait time.Duration) (Message, error) {
	if n.cfg.Keeper {
		return Message{}, errKeeper
	}
	if err := content.CheckFileName(name); err != nil {
		return Message{}, fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	if size > n.cfg.MaxAttachment {
		return Message{}, n.tooLarge(size)
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return Message{}, err
	}
	ref, err := n.files.encrypt(r, n.cfg.MaxAttachment)
	if err != nil {
		return Message{}, err
	}
	ref.Name, ref.Type = name, mediaType
	n.files.hold(g.id, ref.Blob)
	m, err := n.Post(ctx, groupID, content.Content{Kind: content.File, File: ref}, wait)
	if err != nil {
		return Message{}, err
	}
	n.files.decorate(&m)
	return m, nil
}

// encrypt encrypts r, at most limit bytes, to a fresh age identity, stores
// the ciphertext as a blob, and returns its reference (without name and
// type). The plaintext only passes through memory, 64 KiB at a time.
func (f *files) encrypt(r io.Reader, limit int64) (*content.FileRef, error) {
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("make the file's key: %w", err)
	}
	tmp, err := f.tempFile()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*content.FileRef, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	w, err := age.Encrypt(cw, key.Recipient())
	if err != nil {
		return fail(fmt.Errorf("encrypt the file: %w", err))
	}
	size, err := io.Copy(w, io.LimitReader(r, limit+1))
	if err != nil {
		return fail(fmt.Errorf("read the file: %w", err))
	}
	if size > limit {
		// Say how large the file is, reading at most four times the
		// limit to tell.
		rest, _ := io.Copy(io.Discard, io.LimitReader(r, 3*limit))
		if size+rest > 4*limit {
			return fail(fmt.Errorf("the file is over %s; the limit is %s: %w", megabytes(4*limit), megabytes(limit), ErrTooLarge))
		}
		return fail(f.n.tooLarge(size + rest))
	}
	if err := w.Close(); err != nil {
		return fail(fmt.Errorf("encrypt the file: %w", err))
	}
	ref := &content.FileRef{Size: size, BlobSize: cw.n, Key: key.String()}
	copy(ref.Blob[:], h.Sum(nil))
	if err := f.keep(tmp, ref.Blob); err != nil {
		return nil, err
	}
	return ref, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}

// noteFile is called, on the group's goroutine, for every file message the
// group applies (or reads again after a snapshot) and this node reads: its
// blob is held for the group, and fetched from the author (sender) or the
// other members unless stored here already.
func (g *group) noteFile(c *state.Chat, author string, ref *content.FileRef) {
	f := &g.n.files
	f.hold(g.id, ref.Blob)
	if f.has(ref.Blob) {
		return
	}
	if !f.allow(c.Sender, ref.BlobSize, time.Now()) {
		f.mu.Lock()
		f.skipped[ref.Blob] = true
		f.mu.Unlock()
		g.n.countReject("files over the author's daily allowance", "not fetching a file by itself: its author sent more than this node's daily allowance of files; it is fetched when opened")
		return
	}
	f.want(g, ref, c.Sender)
}

// spend is a blob fetched by this node by itself: its size, and when.
type spend struct {
	size int64
	at   time.Time
}

// allow reports whether this node fetches by itself a blob of size from
// author now, and counts it if so: at most AttachmentsPerDay bytes of one
// author's files in the last 24 hours.
func (f *files) allow(author [32]byte, size int64, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept, total := f.spent[author][:0], int64(0)
	for _, s := range f.spent[author] {
		if now.Sub(s.at) < 24*time.Hour {
			kept, total = append(kept, s), total+s.size
		}
	}
	if total+size > f.n.cfg.AttachmentsPerDay {
		f.spent[author] = kept
		return false
	}
	f.spent[author] = append(kept, spend{size: size, at: now})
	return true
}

// decorate sets whether this node holds m's attachment, and how much of it
// arrived if not.
func (f *files) decorate(m *Message) {
	a := m.Attachment
	if a == nil {
		return
	}
	c := *a
	m.Attachment = &c
	var id [32]byte
	if b, err := hex.DecodeString(c.Blob); err == nil && len(b) == 32 {
		copy(id[:], b)
	}
	c.Ready = f.has(id)
	c.Received = 0
	if !c.Ready {
		f.mu.Lock()
		if ft := f.fetching[id]; ft != nil {
			c.Received = ft.received.Load()
		} else {
			c.Skipped = f.skipped[id]
		}
		f.mu.Unlock()
	}
}

// decorateAll decorates every message of ms.
func (f *files) decorateAll(ms []Message) {
	for i := range ms {
		f.decorate(&ms[i])
	}
}

// fileOf returns the file the committed message messageID of the group
// names, with its author's signing key.
func (n *Node) fileOf(ctx context.Context, g *group, messageID string) (*content.FileRef, [32]byte, error) {
	var ref [16]byte
	if b, err := hex.DecodeString(messageID); err != nil || len(b) != 16 {
		return nil, [32]byte{}, fmt.Errorf("%q is not a message id: %w", messageID, ErrInvalid)
	} else {
		copy(ref[:], b)
	}
	var (
		s    sealedMessage
		ok   bool
		rerr error
	)
	if err := g.do(ctx, func() {
		idx, in := g.st.MsgIDs.Lookup(ref)
		if !in {
			return
		}
		ents, err := g.n.store.Entries(g.id[:], idx, idx+1, 1<<30)
		if err != nil {
			rerr = err
			return
		}
		if len(ents) == 1 {
			s, ok = g.sealedAt(ents[0])
		}
	}); err != nil {
		return nil, [32]byte{}, err
	}
	if rerr != nil {
		return nil, [32]byte{}, fmt.Errorf("read the message: %w", rerr)
	}
	if !ok {
		return nil, [32]byte{}, fmt.Errorf("no file message %s in the group's order: %w", messageID, api.ErrUnknownMessage)
	}
	rec, err := crypto.PeekRecord(s.key, g.id, s.c.Sealed, s.c.Sender, s.c.ID)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("open the message: %w", err)
	}
	cnt, err := content.Parse(rec.Body)
	if err != nil || cnt.Kind != content.File {
		return nil, [32]byte{}, fmt.Errorf("message %s carries no file: %w", messageID, ErrNotFound)
	}
	if s.note != nil && s.note.Deleted {
		return nil, [32]byte{}, fmt.Errorf("message %s was deleted: %w", messageID, ErrNotFound)
	}
	return cnt.File, s.c.Sender, nil
}

// OpenFile returns the attachment of the group's message messageID and a
// reader of its plaintext, decrypted as it is read (a truncated or altered
// blob fails the read). While the blob is still arriving it returns a
// *NotReadyError (and starts fetching it again if no fetch is under way).
func (n *Node) OpenFile(ctx context.Context, groupID, messageID string) (api.Attachment, io.ReadCloser, error) {
	g, err := n.groupByText(groupID)
	if err != nil {
		return api.Attachment{}, nil, err
	}
	ref, author, err := n.fileOf(ctx, g, messageID)
	if err != nil {
		return api.Attachment{}, nil, err
	}
	a := api.Attachment{Name: ref.Name, Type: ref.Type, Size: ref.Size, Blob: hex.EncodeToString(ref.Blob[:])}
	file, err := os.Open(n.files.path(ref.Blob))
	if errors.Is(err, os.ErrNotExist) {
		if ref.BlobSize > content.MaxBlobSize(n.cfg.MaxAttachment) {
			return a, nil, n.tooLarge(ref.Size)
		}
		// Opening a file fetches it, whatever the author's allowance.
		n.files.mu.Lock()
		delete(n.files.skipped, ref.Blob)
		n.files.mu.Unlock()
		ft := n.files.want(g, ref, author)
		return a, nil, &NotReadyError{Received: ft.received.Load(), Size: ref.BlobSize}
	}
	if err != nil {
		return a, nil, fmt.Errorf("open the file: %w", err)
	}
	id, err := age.ParseX25519Identity(ref.Key)
	if err != nil {
		file.Close()
		return a, nil, fmt.Errorf("the file's key: %w", err)
	}
	r, err := age.Decrypt(file, id)
	if err != nil {
		file.Close()
		return a, nil, fmt.Errorf("decrypt the file: %w", err)
	}
	a.Ready = true
	return a, readCloser{Reader: r, Closer: file}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
