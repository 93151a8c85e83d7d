package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Fetching a blob (docs/PROTOCOL.md, "Attachments"). A member asks another
// for a part of a blob at a time with a signed TypeBlobGet, and gets it in
// a signed TypeBlobPart. It asks the message's author first, then the other
// members; the parts go to a temporary file as they come, and the blob is
// kept only if the SHA-256 of the whole matches its id. A member that
// served something else is logged, counted, and the next one is asked.

// blobPart is how many bytes of a blob one request asks for.
const blobPart = 1 << 20

// blobPartTimeout bounds one request for a part of a blob: as long as the
// HTTP link lets any request run. Not peerRequestTimeout (2 s, for small
// messages): a part is up to a MiB, which takes 2 s on a link of 4 Mbit/s,
// and a part that times out makes the fetch start over from the next
// member, so with 2 s a member on a slower link (or a busy machine) never
// got a file at all. 10 s lets a part through at about 840 kbit/s.
const blobPartTimeout = httpClientTimeout

// fetchRounds is how many times a fetch asks every member in turn before
// it gives up (a download asks again).
const fetchRounds = 5

// blobGetBody is a TypeBlobGet payload.
type blobGetBody struct {
	_      struct{} `cbor:",toarray"`
	Blob   []byte   // 32 bytes
	Offset uint64
	Length uint64 // at most blobPart
}

// blobPartBody is a TypeBlobPart payload.
type blobPartBody struct {
	_      struct{} `cbor:",toarray"`
	Blob   []byte
	Offset uint64
	Data   []byte
}

// fetch is a blob being fetched.
type fetch struct {
	received atomic.Int64
}

// want starts fetching the blob of ref, from author first, unless a fetch
// of it is under way; it returns the fetch. It never blocks.
func (f *files) want(g *group, ref *content.FileRef, author [32]byte) *fetch {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.fetching[ref.Blob]; ft != nil {
		return ft
	}
	ft := &fetch{}
	if ref.BlobSize > content.MaxBlobSize(f.n.cfg.MaxAttachment) {
		f.n.countReject("file over this node's limit", "not fetching a file over this node's attachment limit")
		return ft
	}
	f.fetching[ref.Blob] = ft
	r := *ref
	f.n.wg.Add(1)
	go func() {
		defer f.n.wg.Done()
		err := f.run(g, &r, author, ft)
		f.mu.Lock()
		delete(f.fetching, r.Blob)
		f.mu.Unlock()
		if err != nil && f.n.ctx.Err() == nil {
			f.n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot fetch a file")
		}
	}()
	return ft
}

// run fetches the blob of ref into the store.
func (f *files) run(g *group, ref *content.FileRef, author [32]byte, ft *fetch) error {
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	case <-f.n.ctx.Done():
		return nil
	}
	wait := f.n.cfg.RetryInterval
	if wait <= 0 {
		wait = time.Second
	}
	var last error = errors.New("no other member to ask")
	for round := 0; round < fetchRounds; round++ {
		if f.has(ref.Blob) {
			return nil
		}
		for _, k := range f.sources(g, author) {
			err := f.from(g, ref, k, ft)
			if err == nil {
				// The UI shows the file's link once it is here.
				f.n.events.publish(Event{Kind: "file", GroupID: g.id.String()})
				return nil
			}
			if f.n.ctx.Err() != nil {
				return nil
			}
			f.n.log.Debug().Err(err).Str("group", g.id.String()).Str("from", shortKey(k)).Int64("received", ft.received.Load()).Int("round", round).Msg("fetching a file from a member failed; asking the next")
			last = err
		}
		t := time.NewTimer(wait << round)
		select {
		case <-t.C:
		case <-f.n.ctx.Done():
			t.Stop()
			return nil
		}
	}
	return fmt.Errorf("fetch file %x: %w", ref.Blob[:8], last)
}

// sources are the members to ask for a blob: its author first, then the
// others in the order of the members' list.
func (f *files) sources(g *group, author [32]byte) [][32]byte {
	v := g.view.Load()
	self := f.n.self.Sign
	var out [][32]byte
	if _, ok := v.members[author]; ok && author != self {
		out = append(out, author)
	}
	for _, k := range sortedKeys(v.members) {
		if k != author && k != self && !v.members[k].keeper {
			out = append(out, k)
		}
	}
	return out
}

// from fetches the blob of ref from the member k, a part at a time, into a
// temporary file, and keeps it if its hash matches.
func (f *files) from(g *group, ref *content.FileRef, k [32]byte, ft *fetch) error {
	m, ok := g.view.Load().members[k]
	if !ok || m.url == "" {
		return errors.New("not a member with an address")
	}
	tmp, err := f.tempFile()
	if err != nil {
		return err
	}
	h := sha256.New()
	ft.received.Store(0)
	if err := f.copyFrom(g, ref, k, m.url, io.MultiWriter(tmp, h), ft); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if !bytes.Equal(h.Sum(nil), ref.Blob[:]) {
		tmp.Close()
		os.Remove(tmp.Name())
		f.mu.Lock()
		f.corrupt++
		f.mu.Unlock()
		f.n.countReject("file does not match its id", "a member served a file that does not match its id; asking another")
		return fmt.Errorf("member %s served a file that does not match its id", shortKey(k))
	}
	return f.keep(tmp, ref.Blob)
}

// copyFrom asks member k at url for the blob's parts in turn and writes
// them to w.
func (f *files) copyFrom(g *group, ref *content.FileRef, k [32]byte, url string, w io.Writer, ft *fetch) error {
	for off := int64(0); off < ref.BlobSize; {
		n := min(int64(blobPart), ref.BlobSize-off)
		payload, err := state.Encode(&blobGetBody{Blob: ref.Blob[:], Offset: uint64(off), Length: uint64(n)})
		if err != nil {
			return err
		}
		frame, err := f.n.sign(&crypto.Envelope{Type: crypto.TypeBlobGet, Group: g.id, To: k, Payload: payload})
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(f.n.ctx, blobPartTimeout)
		resp, err := f.n.cfg.Link.Post(ctx, url, frame)
		cancel()
		if err != nil {
			return fmt.Errorf("ask %s: %w", shortKey(k), err)
		}
		data, err := readBlobPart(g, f.n.self.Sign, k, ref.Blob, off, resp)
		if err != nil {
			f.n.reject(nil, "bad file part", err)
			return err
		}
		if int64(len(data)) != n {
			return fmt.Errorf("member %s served %d bytes of a file part of %d", shortKey(k), len(data), n)
		}
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("store the file: %w", err)
		}
		off += n
		ft.received.Store(off)
	}
	return nil
}

// readBlobPart checks member k's answer to a request for the part of blob
// at off, and returns its data.
func readBlobPart(g *group, self, k [32]byte, blob [32]byte, off int64, resp []byte) ([]byte, error) {
	env, err := crypto.Verify(resp)
	if err != nil {
		return nil, err
	}
	if env.Type != crypto.TypeBlobPart || env.Sender != k || env.To != self || env.Group != g.id {
		return nil, fmt.Errorf("not the member's file part for us: %w", crypto.ErrMalformed)
	}
	var b blobPartBody
	if err := state.Decode(env.Payload, &b); err != nil {
		return nil, fmt.Errorf("file part: %w", err)
	}
	if !bytes.Equal(b.Blob, blob[:]) || b.Offset != uint64(off) {
		return nil, fmt.Errorf("a file part of another file or place: %w", crypto.ErrMalformed)
	}
	return b.Data, nil
}

// serveBlob answers a member's TypeBlobGet: the part it asks for of a blob
// this node holds and a message of the group names. The dispatch has
// checked that the sender is a current member of the group.
func (n *Node) serveBlob(g *group, env *crypto.Envelope) ([]byte, error) {
	var b blobGetBody
	if err := state.Decode(env.Payload, &b); err != nil || len(b.Blob) != 32 || b.Length == 0 || b.Length > blobPart {
		return nil, n.reject(env, "malformed file request", err)
	}
	id := [32]byte(b.Blob)
	if !n.files.held(g.id, id) {
		return nil, n.reject(env, "request for a file the group does not hold here", nil)
	}
	file, err := os.Open(n.files.path(id))
	if err != nil {
		return nil, n.reject(env, "request for a file the group does not hold here", err)
	}
	defer file.Close()
	data := make([]byte, b.Length)
	k, err := file.ReadAt(data, int64(min(b.Offset, 1<<62)))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read a file: %w", err)
	}
	payload, err := state.Encode(&blobPartBody{Blob: b.Blob, Offset: b.Offset, Data: data[:k]})
	if err != nil {
		return nil, err
	}
	return n.sign(&crypto.Envelope{Type: crypto.TypeBlobPart, Group: g.id, To: env.Sender, Payload: payload})
}

// sortedKeys returns the members' keys in byte order.
func sortedKeys(m map[[32]byte]viewMember) [][32]byte {
	out := make([][32]byte, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i][:], out[j][:]) < 0 })
	return out
}
