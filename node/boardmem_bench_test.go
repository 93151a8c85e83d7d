package node

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/demes/demes/content"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// BenchmarkBoardMemory measures what a group keeps in memory for each
// reaction it applied (issue 16: memory that grows with the history), for
// 100,000 reactions to as many messages by 10 authors. "applied": the
// board's note of the message reacted to and the record the stored board
// is written from (boardstore.go), with the authors' ids shared
// (group.idText) and each emoji decoded afresh, as applyContent has them:
// what a group holds until its next snapshot stores the records in pages
// of notes (boardnotes.go), and what each note the board in memory learns
// costs. "stored": a group with a real store, after a snapshot stored them
// and the board learnt the notes of the newest 1,000 messages (a window's
// worth), as a page of them shows them: the pages' keys and summaries,
// and the notes learnt. It reports the live heap a reaction adds.
func BenchmarkBoardMemory(b *testing.B) {
	b.Run("applied", func(b *testing.B) { benchmarkBoardMemory(b, false) })
	b.Run("stored", func(b *testing.B) { benchmarkBoardMemory(b, true) })
}

func benchmarkBoardMemory(b *testing.B, stored bool) {
	const n = 100_000
	authors := make([]string, 10)
	for i := range authors {
		authors[i] = strings.Repeat(string(rune('a'+i)), 64)
	}
	k := crypto.KeyRef{Epoch: 1}
	for b.Loop() {
		var g *group
		if stored {
			g, _ = partsGroup(b)
			g.hist.window = 1000
			g.n.keys.kept[senderName("sender", g.id, k)] = true
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var board content.Board
		var blog boardLog
		for i := range n {
			var id, ref [16]byte
			binary.BigEndian.PutUint64(id[:], uint64(2*i+2))
			binary.BigEndian.PutUint64(ref[:], uint64(2*i+1))
			author, target := authors[i%len(authors)], authors[0]
			cnt := content.Content{Kind: content.Reaction, Ref: &ref, Emoji: strings.Clone("👍")}
			c := &state.Chat{Index: uint64(2*i + 2), ID: id, Epoch: k.Epoch, Sealed: nil}
			if stored {
				g.blog.record(c, author, cnt, nil, target, true, uint64(2*i+1))
				continue
			}
			_ = board.Apply(id, author, cnt, func([16]byte) (string, bool) { return target, true })
			blog.record(c, author, cnt, nil, target, true, uint64(2*i+1))
		}
		if stored {
			if err := g.writeBoard(2 * n); err != nil {
				b.Fatal(err)
			}
			if g.boardRecords() != n || len(g.blog.records) != 0 {
				b.Fatalf("%d records stored, %d in memory; want %d stored", g.boardRecords(), len(g.blog.records), n)
			}
			for i := n - 1000; i < n; i++ {
				var ref [16]byte
				binary.BigEndian.PutUint64(ref[:], uint64(2*i+1))
				g.learn(ref, uint64(2*i+1))
				if note := g.board.Note(ref); note == nil || note.Reaction(authors[i%len(authors)]) != "👍" {
					b.Fatalf("message %d shows %+v, want its reaction", 2*i+1, note)
				}
			}
		}
		if stored {
			// The store's transaction buffers, in sync.Pools, outlive
			// one collection.
			runtime.GC()
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/reaction")
		runtime.KeepAlive(&board)
		runtime.KeepAlive(&blog)
		runtime.KeepAlive(g)
	}
}

// BenchmarkBoardEncode measures encoding a part of the stored board of
// 100,000 reactions (sealPart; sealing it adds an XChaCha20-Poly1305 pass
// over the bytes), and reports its size.
func BenchmarkBoardEncode(b *testing.B) {
	const n = 100_000
	sb := storedPart{Num: n}
	author := strings.Repeat("a", 64)
	for i := range n {
		var id, ref [16]byte
		binary.BigEndian.PutUint64(id[:], uint64(2*i+1))
		binary.BigEndian.PutUint64(ref[:], uint64(2*i))
		sb.Records = append(sb.Records, boardRecord{Index: uint64(i + 1), ID: id, Author: author, Target: author, Found: true,
			Kind: uint8(content.Reaction), Ref: ref[:], Emoji: "👍", Counter: uint64(i%100 + 1)})
	}
	var size int
	for b.Loop() {
		plain, err := boardEnc.Marshal(&sb)
		if err != nil {
			b.Fatal(err)
		}
		size = len(plain)
	}
	b.ReportMetric(float64(size)/n, "B/reaction")
}

// BenchmarkLearnPage measures what a page of 100 older messages costs the
// board in memory when each has a note in the store (boardnotes.go): the
// board is emptied, then learns the notes of 100 consecutive messages of a
// group of 100,000 reactions to as many messages, as listing them does.
func BenchmarkLearnPage(b *testing.B) {
	const n = 100_000
	g, _ := partsGroup(b)
	g.hist.window = 1000
	k := crypto.KeyRef{Epoch: 1}
	g.n.keys.kept[senderName("sender", g.id, k)] = true
	author := strings.Repeat("a", 64)
	for i := range n {
		var id, ref [16]byte
		binary.BigEndian.PutUint64(id[:], uint64(2*i+2))
		binary.BigEndian.PutUint64(ref[:], uint64(2*i+1))
		cnt := content.Content{Kind: content.Reaction, Ref: &ref, Emoji: "👍"}
		g.blog.record(&state.Chat{Index: uint64(2*i + 2), ID: id, Epoch: k.Epoch}, author, cnt, nil, author, true, uint64(2*i+1))
	}
	if err := g.writeBoard(2 * n); err != nil {
		b.Fatal(err)
	}
	start := 0
	for b.Loop() {
		g.forgetNotes()
		for i := start; i < start+100; i++ {
			var ref [16]byte
			binary.BigEndian.PutUint64(ref[:], uint64(2*i+1))
			g.learn(ref, uint64(2*i+1))
		}
		start = (start + 100) % (n - 100)
	}
}
