package node

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"

	"github.com/demes/demes/content"
	"github.com/demes/demes/state"
)

// BenchmarkBoardMemory measures what a group keeps in memory for each
// reaction it applied (issue 16: memory that grows with the history), for
// 100,000 reactions to as many messages by 10 authors. "applied": the
// board's note of the message reacted to and the record the stored board
// is written from (boardstore.go), with the authors' ids shared
// (group.idText) and each emoji decoded afresh, as applyContent has them:
// what a group holds until its next snapshot stores the records in a part
// (boardparts.go). "stored": the notes alone, as after that snapshot, and
// as a restart from the stored parts leaves them (every string decoded
// afresh, then shared by replayBoard). It reports the live heap a reaction
// adds.
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
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var board content.Board
		var blog boardLog
		var names sharedNames
		for i := range n {
			var id, ref [16]byte
			binary.BigEndian.PutUint64(id[:], uint64(2*i+1))
			binary.BigEndian.PutUint64(ref[:], uint64(2*i))
			author, target := authors[i%len(authors)], authors[0]
			cnt := content.Content{Kind: content.Reaction, Ref: &ref, Emoji: strings.Clone("👍")}
			if stored {
				r := boardRecord{Author: strings.Clone(author), Target: strings.Clone(target), Emoji: cnt.Emoji}
				names.share(&r)
				author, target, cnt.Emoji = r.Author, r.Target, r.Emoji
			}
			_ = board.Apply(id, author, cnt, func([16]byte) (string, bool) { return target, true })
			if !stored {
				blog.record(&state.Chat{Index: uint64(i + 1), ID: id}, author, cnt, nil, target, true)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/reaction")
		runtime.KeepAlive(&board)
		runtime.KeepAlive(&blog)
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
