package transcript_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// chatStamped appends author's message with text whose record states it
// was sent at sentAt, whatever the log's time: a member's modified node
// can write any time in its records.
func chatStamped(t *testing.T, g *transcripttest.Group, author *identity.Identity, text string, sentAt time.Time) uint64 {
	t.Helper()
	id := g.NextMessageID()
	k := g.SenderKey(author)
	var header []identity.PublicID
	if _, ok := g.State.KeyRegistered(author.Public().Sign, k.ID); !ok {
		header = g.State.Recipients()
	}
	m := &crypto.Message{Group: g.ID, ID: id, Head: g.State.Chain.Head, Time: sentAt.UnixNano(), Body: []byte(text)}
	sealed, err := crypto.SealMessage(author, m, k, header)
	if err != nil {
		t.Fatal(err)
	}
	if r := g.Append(g.Sign(author, crypto.TypeChat, &state.ChatBody{ID: id[:], Sealed: sealed})); r.Err != nil {
		t.Fatalf("the stamped message was rejected: %v", r.Err)
	}
	return g.Entries[len(g.Entries)-1].Index
}

// TestRangeTimesStampedByAMember: a member whose messages state false
// times cannot widen another member's export by time. Mallory plants, early
// in the log, a message stamped a year ahead, and late in it one stamped a
// year back. Alice exports from a time after her old messages, or up to a
// time before her recent ones: neither transcript may show a message she
// did not ask for. (Mallory's stamps may narrow the range: a time bound
// stops at a message stated to be sent on its other side.)
func TestRangeTimesStampedByAMember(t *testing.T) {
	t.Parallel()
	alice, mallory := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2)
	g := transcripttest.New(t, transcripttest.GroupID(7), "stamps", alice, "alice")
	g.Add(alice, mallory, "mallory")
	g.Chat(alice, "old secret one")
	chatStamped(t, g, mallory, "planted ahead", g.Now().AddDate(1, 0, 0))
	g.Chat(alice, "old secret two")
	g.Skip(1000) // a second later
	recentAt := g.Now()
	g.Chat(alice, "recent news")
	chatStamped(t, g, mallory, "planted back", g.Now().AddDate(-1, 0, 0))
	g.Chat(alice, "recent news two")
	last := g.Entries[len(g.Entries)-1].Index
	export := func(from, to transcript.Bound) []byte {
		t.Helper()
		doc, err := transcript.BuildWith(alice, g.ID, g.Entries, transcript.Options{Attestations: [][]byte{g.Head(alice, last)}, From: from, To: to}, g.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := transcript.Verify(doc, nil); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	from := export(transcript.Bound{Time: recentAt}, transcript.Bound{})
	if !bytes.Contains(from, []byte("recent news two")) {
		t.Error("the export from the recent messages' time does not show the last one")
	}
	for _, old := range []string{"old secret one", "old secret two"} {
		if bytes.Contains(from, []byte(old)) {
			t.Errorf("exported from %s, the transcript shows %q, sent before", recentAt.Format(time.RFC3339Nano), old)
		}
	}
	before := recentAt.Add(-time.Millisecond)
	to := export(transcript.Bound{}, transcript.Bound{Time: before})
	if !bytes.Contains(to, []byte("old secret one")) {
		t.Error("the export up to before the recent messages does not show the first old one")
	}
	for _, recent := range []string{"recent news", "recent news two"} {
		if bytes.Contains(to, []byte(recent)) {
			t.Errorf("exported up to %s, the transcript shows %q, sent after", before.Format(time.RFC3339Nano), recent)
		}
	}
}
