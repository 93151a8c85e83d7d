package transcript

import (
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Build returns the signed transcript of group as exporter holds it.
// entries are the committed entries of the group's log that carry a frame,
// in log order, from the genesis on (see [Entry]; a node passes every entry
// up to its commit index, as it applied them).
//
// Build replays the entries through the group's state machine, as the
// exporter's node did, and includes every accepted chat message that
// exporter can open: those sealed to it, so not the ones from before it
// joined. exportedAt is recorded in the transcript.
func Build(exporter *identity.Identity, group crypto.GroupID, entries []Entry, exportedAt time.Time) ([]byte, error) {
	return BuildAttested(exporter, group, entries, nil, exportedAt)
}

// BuildAttested is [Build] with attestations: members' signed statements of
// their transcript heads (crypto.TypeHead envelopes, as members exchange
// them in their pings), which the transcript carries so that a verifier
// can tell whose history it matches (see [Verify]'s trust). The verifier
// checks each one; Build only includes them.
func BuildAttested(exporter *identity.Identity, group crypto.GroupID, entries []Entry, attestations [][]byte, exportedAt time.Time) ([]byte, error) {
	return BuildWith(exporter, group, entries, Options{Attestations: attestations}, exportedAt)
}

// Options are what [BuildWith] adds to a transcript beyond the log.
type Options struct {
	// Attestations are members' signed statements of their heads (see
	// [BuildAttested]).
	Attestations [][]byte
	// From and To limit the messages the transcript shows to a range of
	// the log; a zero Bound leaves that end open. With either set, the
	// transcript states the range (as log indexes, resolved against the
	// log) in its signed body and holds the decrypted messages in it
	// only; every entry stays, so the history checks as a whole
	// transcript's does, and the other messages are ciphertext only.
	From, To Bound
	// Keys, when not nil, are the sender keys the exporter still keeps
	// (under forward secrecy, a node's key store): the messages are opened
	// with these only, and no key header is opened, so that a transcript
	// shows nothing its exporter's key policy has deleted. With nil, the
	// keys are learnt from the key headers the exporter's identity opens
	// (sealed message version 2).
	Keys []*crypto.SenderKey
}

// BuildWith is [Build] with options: attestations, and a range. A range
// that names no message of the log fails with [ErrNoSuchMessage], one that
// holds no message the exporter can read with [ErrEmptyRange], and one
// whose start comes after its end with [ErrBackwardRange].
func BuildWith(exporter *identity.Identity, group crypto.GroupID, entries []Entry, opts Options, exportedAt time.Time) ([]byte, error) {
	if exporter == nil {
		return nil, errors.New("build transcript: no exporter identity")
	}
	for i, e := range entries {
		switch {
		case i > 0 && e.Index <= entries[i-1].Index:
			return nil, fmt.Errorf("build transcript: entry at index %d after index %d", e.Index, entries[i-1].Index)
		case len(e.Frame) == 0:
			return nil, fmt.Errorf("build transcript: entry at index %d has no frame", e.Index)
		case e.Kind != KindEntry && e.Kind != KindConf:
			return nil, fmt.Errorf("build transcript: entry at index %d has unknown kind %d", e.Index, e.Kind)
		}
	}
	frames := make([][]byte, len(entries))
	for i := range entries {
		frames[i] = entries[i].Frame
	}
	res := make([]checked, len(entries))
	pl := startPool(verifyJobs(res, frames, false))
	rp := newReplay(group, len(entries))
	for i := range entries {
		if i%chunk == 0 {
			pl.wait(i / chunk)
		}
		rp.apply(&entries[i], &res[i])
	}
	pl.close()
	st := rp.st
	if len(entries) == 0 || rp.outcomes[0].typ != crypto.TypeGenesis || rp.outcomes[0].err != nil {
		return nil, fmt.Errorf("build transcript: the log of group %s does not start with its genesis", group)
	}

	// Learn the sender keys from the key headers the exporter can open,
	// in log order (one per member and epoch, each an X25519 operation),
	// then open the accepted chat messages on all cores: each costs an
	// AEAD decryption and a signature check.
	var chats []int
	ring := crypto.NewKeyRing(exporter, group)
	for _, k := range opts.Keys {
		ring.Add(k)
	}
	for i, o := range rp.outcomes {
		c := o.chat
		if c == nil {
			continue
		}
		chats = append(chats, i)
		if c.Header && opts.Keys == nil {
			// A header not sealed to the exporter leaves the ring as
			// it was: the messages under that key are not its to read.
			_, _ = ring.Open(chatKeyRef(c), c.Sealed)
		}
	}
	opened := make([]*message, len(chats))
	var jobs []func()
	for lo := 0; lo < len(chats); lo += chunk {
		hi := min(lo+chunk, len(chats))
		jobs = append(jobs, func() {
			for j := lo; j < hi; j++ {
				c := rp.outcomes[chats[j]].chat
				// A message this member cannot open (sealed before it
				// joined, or broken by its author) is not one it read:
				// it stays in the transcript as an entry only, as the
				// node leaves it out of its message list.
				k := ring.Lookup(chatKeyRef(c))
				if k == nil {
					continue
				}
				o, err := crypto.OpenMessage(k, group, c.Sealed, c.Sender, c.ID)
				if err != nil {
					continue
				}
				mk, err := k.MessageKeyOf(c.Sealed, c.ID)
				if err != nil {
					continue
				}
				opened[j] = &message{
					index: c.Index, id: o.ID, author: o.Author, text: string(o.Body),
					sentAt: time.Unix(0, o.Time), record: o.Record, sig: o.Sig,
					key: mk, hasKey: true,
				}
			}
		})
	}
	startPool(jobs).finish()

	d := &document{
		group: group, name: st.Name, exporter: exporter.Public(), exportedAt: exportedAt,
		entries: entries, attestations: opts.Attestations,
		head: head{index: st.Chain.Index, entries: uint64(len(entries)), hash: st.Chain.Head},
	}
	d.chains = make([][32]byte, len(entries))
	for i, o := range rp.outcomes {
		d.chains[i] = o.head
	}
	if !opts.From.IsZero() || !opts.To.IsZero() {
		var err error
		// The error reads well as it is: the request's, not the log's.
		if d.span, err = resolveRange(opts.From, opts.To, entries, rp.outcomes, opened); err != nil {
			return nil, err
		}
	}
	for _, m := range opened {
		if m != nil && (d.span == nil || m.index >= d.span.From && m.index <= d.span.To) {
			d.messages = append(d.messages, *m)
		}
	}
	b, err := d.marshal(exporter)
	if err != nil {
		return nil, fmt.Errorf("build transcript: %w", err)
	}
	return b, nil
}

// chatKeyRef names the sender key an accepted chat message is sealed under.
func chatKeyRef(c *state.Chat) crypto.KeyRef {
	return crypto.KeyRef{Sender: c.Sender, Epoch: c.Epoch, ID: c.KeyID}
}
