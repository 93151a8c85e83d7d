package node_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
	"github.com/demes/demes/node"
	"github.com/demes/demes/node/simnet"
)

func ref(t *testing.T, m node.Message) *[16]byte {
	t.Helper()
	b, err := hex.DecodeString(m.ID)
	if err != nil || len(b) != 16 {
		t.Fatalf("message id %q", m.ID)
	}
	return (*[16]byte)(b)
}

// post has node i post c, committed within 10 s.
func (c *cluster) post(i int, cnt content.Content) node.Message {
	c.t.Helper()
	m, err := c.Node(i).Post(ctxT(c.t, 20*time.Second), c.GroupID, cnt, 10*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	if m.State != node.StateCommitted {
		c.t.Fatalf("node%d's %s is %s", i, cnt.Kind, m.State)
	}
	return m
}

// shown waits until node i lists the message id as want says, and returns
// what it lists.
func (c *cluster) shown(i int, id, what string, want func(node.Message) bool) node.Message {
	c.t.Helper()
	var got node.Message
	c.Eventually(c.t, 20*time.Second, fmt.Sprintf("node%d to show message %s %s", i, id[:8], what), func() bool {
		got = c.listed(i)[id]
		return want(got)
	})
	return got
}

// TestMessageChanges: replies, reactions, edits and deletes, as three
// members see them. A change is committed like any message but not listed:
// it shows on its target, on every member. Only a message's author may edit
// or delete it: its own node refuses to send anything else, and when a
// member's modified node sends it anyway, every member ignores it (and
// counts it as rejected). After a restart (from a snapshot, with a window of
// three messages in memory) a member shows the same reactions, edits and
// deletes, on messages in the window and on older ones read from the store.
func TestMessageChanges(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, 3, 211, simnet.LinkConfig{Latency: time.Millisecond}, func(c *cluster) {
		for _, tn := range c.Members() {
			tn.Tweak = func(cfg *node.Config) {
				cfg.MessageWindow = testWindow
				cfg.SnapshotEntries, cfg.SnapshotKeep = 8, 2
			}
		}
	})
	c.form()
	old := c.send(0, "an old message, soon out of the window", 10*time.Second)
	hello := c.send(0, "helo everyone", 10*time.Second)
	bobs := c.send(1, "bob's own words", 10*time.Second)

	reply := c.post(1, content.Content{Kind: content.Text, Text: "hi alice", Ref: ref(t, hello)})
	if reply.ReplyTo != hello.ID || reply.Text != "hi alice" {
		t.Fatalf("the reply answers as %+v", reply)
	}
	c.shown(2, reply.ID, "as a reply", func(m node.Message) bool { return m.ReplyTo == hello.ID && m.Text == "hi alice" })

	react := c.post(1, content.Content{Kind: content.Reaction, Ref: ref(t, hello), Emoji: "👍"})
	if react.Kind != "reaction" || react.Target != hello.ID {
		t.Fatalf("the reaction answers as %+v", react)
	}
	// Committed: its answer names its place in the log, as a text's does.
	if react.Index == 0 || react.Index <= reply.Index {
		t.Errorf("the committed reaction answers with index %d (the reply before it: %d)", react.Index, reply.Index)
	}
	c.post(2, content.Content{Kind: content.Reaction, Ref: ref(t, hello), Emoji: "👍"})
	c.post(2, content.Content{Kind: content.Reaction, Ref: ref(t, old), Emoji: "🎉"})
	c.post(0, content.Content{Kind: content.Reaction, Ref: ref(t, hello), Emoji: "😀"})
	c.post(0, content.Content{Kind: content.Reaction, Ref: ref(t, hello)}) // taken back
	c.post(0, content.Content{Kind: content.Edit, Ref: ref(t, hello), Text: "hello everyone"})
	c.post(1, content.Content{Kind: content.Delete, Ref: ref(t, bobs)})

	// Refused by the author's own node, with the reason.
	for name, tc := range map[string]struct {
		cnt  content.Content
		want error
	}{
		"edit of another's":   {content.Content{Kind: content.Edit, Ref: ref(t, hello), Text: "bob was here"}, api.ErrForbidden},
		"delete of another's": {content.Content{Kind: content.Delete, Ref: ref(t, hello)}, api.ErrForbidden},
		"react to a deleted":  {content.Content{Kind: content.Reaction, Ref: ref(t, bobs), Emoji: "👍"}, api.ErrInvalid},
		"react to a change":   {content.Content{Kind: content.Reaction, Ref: ref(t, react), Emoji: "👍"}, api.ErrNotFound},
		"react with a word":   {content.Content{Kind: content.Reaction, Ref: ref(t, hello), Emoji: "ok"}, content.ErrNotEmoji},
		"react with two":      {content.Content{Kind: content.Reaction, Ref: ref(t, hello), Emoji: "👍👍"}, content.ErrNotEmoji},
		"unknown message":     {content.Content{Kind: content.Delete, Ref: &[16]byte{1}}, api.ErrNotFound},
		"reply to nothing":    {content.Content{Kind: content.Text, Ref: &[16]byte{1}, Text: "what?"}, api.ErrNotFound},
		"reply to a change":   {content.Content{Kind: content.Text, Ref: ref(t, react), Text: "to a reaction"}, api.ErrNotFound},
		"starts with NUL":     {content.Content{Kind: content.Text, Text: "\x00AAA"}, api.ErrInvalid},
	} {
		if m, err := c.Node(1).Post(ctxT(t, 10*time.Second), c.GroupID, tc.cnt, time.Second); !errors.Is(err, tc.want) {
			t.Errorf("%s: sent as %+v, %v; want %v", name, m, err, tc.want)
		}
	}
	// A change that would change nothing is not sent (no id, so nothing
	// in the outbox): the answer says so.
	for name, cnt := range map[string]content.Content{
		"take back no reaction":   {Kind: content.Reaction, Ref: ref(t, old)},
		"the same reaction again": {Kind: content.Reaction, Ref: ref(t, hello), Emoji: "👍"},
	} {
		m, err := c.Node(1).Post(ctxT(t, 10*time.Second), c.GroupID, cnt, time.Second)
		if err != nil || !m.Unchanged || m.ID != "" || m.Kind != "reaction" || m.Target != hex.EncodeToString(cnt.Ref[:]) {
			t.Errorf("%s: answered %+v, %v; want unchanged, with no id", name, m, err)
		}
	}
	// A change is in the log but not listed: no page ends before it.
	if _, err := c.Node(0).MessagePage(c.GroupID, 2, react.ID); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "is the id of a reaction, an edit or a delete, not of a message") {
		t.Errorf("a page before a reaction: %v", err)
	}
	// Sent anyway by a modified node: committed, and ignored by everyone.
	rejectedBefore := c.Node(2).Status().Rejected["message change: "+content.ErrNotAuthor.Error()]
	for _, cnt := range []content.Content{
		{Kind: content.Edit, Ref: ref(t, hello), Text: "mallory was here"},
		{Kind: content.Delete, Ref: ref(t, hello)},
	} {
		if _, err := node.PostUnchecked(ctxT(t, 20*time.Second), c.Node(1), c.GroupID, cnt); err != nil {
			t.Fatal(err)
		}
	}
	last := c.send(2, "after all that", 10*time.Second)

	wantHello := func(self int) func(node.Message) bool {
		return func(m node.Message) bool {
			return m.Text == "hello everyone" && m.Edited && !m.Deleted &&
				reflect.DeepEqual(m.Reactions, []api.Reaction{{Emoji: "👍", Count: 2, Mine: self != 0}})
		}
	}
	deleted := func(m node.Message) bool { return m.Deleted && m.Text == "" && m.ID == bobs.ID }
	oldReacted := func(self int) func(node.Message) bool {
		return func(m node.Message) bool {
			return m.Text == old.Text && reflect.DeepEqual(m.Reactions, []api.Reaction{{Emoji: "🎉", Count: 1, Mine: self == 2}})
		}
	}
	for i := range 3 {
		c.shown(i, last.ID, "at all", func(m node.Message) bool { return m.Text == last.Text })
		c.shown(i, hello.ID, "edited by alice with two 👍", wantHello(i))
		c.shown(i, bobs.ID, "deleted", deleted)
		c.shown(i, old.ID, "with carol's 🎉", oldReacted(i))
		// Changes are not messages of their own.
		for _, m := range c.listed(i) {
			if m.Kind != "" {
				t.Errorf("node%d lists the %s %s", i, m.Kind, m.ID)
			}
		}
	}
	if got := c.Node(2).Status().Rejected["message change: "+content.ErrNotAuthor.Error()]; got != rejectedBefore+2 {
		t.Errorf("node2 counted %d edits or deletes by someone else than the author, want %d", got-rejectedBefore, 2)
	}

	// A restart from a snapshot: the old message is read from the store,
	// the others from the window; both show their changes.
	c.restart(2)
	c.shown(2, last.ID, "after its restart", func(m node.Message) bool { return m.Text == last.Text })
	c.shown(2, hello.ID, "edited with two 👍 after its restart", wantHello(2))
	c.shown(2, bobs.ID, "deleted after its restart", deleted)
	c.shown(2, old.ID, "with its 🎉 after its restart", oldReacted(2))
	if s, err := node.GroupLogStats(c.Node(2), c.GroupID); err != nil || s.RestoredFrom == 0 {
		t.Errorf("node2 restarted from snapshot %d (%v): the rebuild was not exercised", s.RestoredFrom, err)
	}
}

// TestReactionInOutbox: whether a reaction changes anything counts this
// member's reactions still on their way (in the outbox) after those the
// group applied: one taken back right after it was sent is sent; taken
// back again, it is not.
func TestReactionInOutbox(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 213, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	msg := c.send(0, "react to me", 10*time.Second)
	c.shown(1, msg.ID, "at all", func(m node.Message) bool { return m.State == node.StateCommitted })
	for i, tc := range []struct {
		emoji     string
		unchanged bool
	}{{"🎈", false}, {"", false}, {"", true}, {"🎈", false}, {"🎈", true}} {
		// No wait: the one before may be in the outbox still, or applied.
		m, err := c.Node(1).Post(ctxT(t, 10*time.Second), c.GroupID, content.Content{Kind: content.Reaction, Ref: ref(t, msg), Emoji: tc.emoji}, 0)
		if err != nil || m.Unchanged != tc.unchanged || (m.ID == "") != tc.unchanged {
			t.Fatalf("%d: %q answered %+v, %v; want unchanged %v", i, tc.emoji, m, err, tc.unchanged)
		}
	}
	c.shown(2, msg.ID, "with one 🎈", func(m node.Message) bool {
		return reflect.DeepEqual(m.Reactions, []api.Reaction{{Emoji: "🎈", Count: 1}})
	})
}

// TestUnchangedReactionIsStored: a reaction answered as unchanged because
// the same one is queued is answered once that queued one is on disk, so
// that a crash right after the answer does not lose the reaction it
// promised (chaos seed 301044 with RotateMessages 3: an acknowledged
// reaction shown on no member).
func TestUnchangedReactionIsStored(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 214, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	msg := c.send(1, "react to me", 10*time.Second)
	c.shown(2, msg.ID, "at all", func(m node.Message) bool { return m.State == node.StateCommitted })
	// Cut off, node1 writes nothing of its own accord: the queued
	// reaction stays off its disk until something makes it durable.
	c.Isolate(1)
	react := content.Content{Kind: content.Reaction, Ref: ref(t, msg), Emoji: "🎉"}
	stored, err := node.EnqueueUnstored(ctxT(t, 10*time.Second), c.Node(1), c.GroupID, react)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Node(1).Post(ctxT(t, 10*time.Second), c.GroupID, react, 0)
	if err != nil || !m.Unchanged {
		t.Fatalf("the same reaction again answered %+v, %v; want unchanged", m, err)
	}
	if !stored() {
		t.Fatal("answered unchanged while the queued reaction it stands for is not on disk")
	}
	c.Crash(1)
	c.net.Heal()
	c.start(1)
	c.shown(2, msg.ID, "with node1's 🎉", func(m node.Message) bool {
		return reflect.DeepEqual(m.Reactions, []api.Reaction{{Emoji: "🎉", Count: 1}})
	})
}

// TestReissuedMessageStoredBeforeProposed: a queued message sent again
// under a new id because another member's message took its id (a lying
// host; idtaken.go) is on disk under the new id before that id is
// proposed. Before, only the old id was stored until the group's next
// write while the new one was proposed at once (and counted as on disk):
// a crash in between could commit the message under the new id, and the
// restart, finding the old id taken, sent it a second time under a third.
func TestReissuedMessageStoredBeforeProposed(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 217, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	// Cut off, node1's message stays queued (on disk: the send answered).
	c.Isolate(1)
	m := c.send(1, "taken id", 0)
	if m.State == node.StateCommitted {
		t.Fatalf("committed while cut off: %+v", m)
	}
	newID, stored, err := node.ReissueQueued(ctxT(t, 10*time.Second), c.Node(1), c.GroupID, m.ID, c.Node(0))
	if err != nil {
		t.Fatal(err)
	}
	if newID == m.ID {
		t.Fatal("not sent again under a new id")
	}
	if !stored {
		t.Fatal("the message sent again under a new id is proposed before it is stored under that id")
	}
	c.Crash(1)
	c.net.Heal()
	c.start(1)
	c.shown(2, newID, "committed under its new id", func(m node.Message) bool { return m.State == node.StateCommitted })
}

// TestQueuedMessageOutlivesItsKey: a message queued (acknowledged) while
// the group cannot commit for longer than the node keeps its sender keys
// is still sent after a restart. The outbox holds only the sealed frame,
// opened again at the start with the sender key it was sealed under.
func TestQueuedMessageOutlivesItsKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 218, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	// Key headers sealed to prekeys, as in a group past its first
	// minutes (not to identity keys, which no policy deletes).
	c.Eventually(t, 30*time.Second, "every member's prekey known to node1", func() bool {
		k, err := node.MembersWithPrekeys(c.Node(1), c.GroupID)
		return err == nil && k == 3
	})
	c.sendCommitted(1, "before", 10*time.Second)
	c.Isolate(1)
	m := c.send(1, "queued for weeks", 0)
	if m.State == node.StateCommitted {
		t.Fatalf("committed while cut off: %+v", m)
	}
	// Weeks later, still cut off, the key policy runs.
	node.ExpireKeysAt(c.Node(1), time.Now().Add(60*24*time.Hour))
	c.Crash(1)
	c.net.Heal()
	c.start(1)
	c.shown(2, m.ID, "committed", func(m node.Message) bool { return m.State == node.StateCommitted })
}

// TestNoReplyToQueuedChange: a reply to a reaction is refused while the
// reaction is queued as once it is committed (helper-58's QA pass: "(reply
// to e094a8ad)" under a reaction's id), not sent to become that reply.
func TestNoReplyToQueuedChange(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, 219, simnet.LinkConfig{Latency: time.Millisecond})
	c.form()
	msg := c.send(1, "react to me", 10*time.Second)
	c.Isolate(1)
	ctx := ctxT(t, 20*time.Second)
	r, err := c.Node(1).Post(ctx, c.GroupID, content.Content{Kind: content.Reaction, Ref: ref(t, msg), Emoji: "🎉"}, 0)
	if err != nil || r.State == node.StateCommitted {
		t.Fatalf("the reaction cut off answered %+v, %v; want queued", r, err)
	}
	_, err = c.Node(1).Post(ctx, c.GroupID, content.Content{Kind: content.Text, Text: "re", Ref: ref(t, r)}, 0)
	if !errors.Is(err, api.ErrUnknownMessage) {
		t.Fatalf("a reply to the queued reaction answered %v, want %v", err, api.ErrUnknownMessage)
	}
}
