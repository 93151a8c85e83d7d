package transcript

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Errors. Every error [Verify] returns wraps exactly one of them, with the
// detail a person needs (which entry or message, what differs).
var (
	// ErrTooLarge: the file, or a value in it, is larger than its limit.
	ErrTooLarge = errors.New("too large")
	// ErrTruncated: the file ends before the transcript does.
	ErrTruncated = errors.New("truncated file")
	// ErrMalformed: the file is not a transcript in the canonical form,
	// for example reformatted JSON, an unknown field or invalid base64.
	ErrMalformed = errors.New("malformed transcript")
	// ErrVersion: the transcript's version is not [Version].
	ErrVersion = errors.New("unsupported transcript version")
	// ErrReordered: entries, or messages, are not in increasing index order.
	ErrReordered = errors.New("entries reordered")
	// ErrRemoved: the transcript holds fewer entries than its head counts.
	ErrRemoved = errors.New("entry removed")
	// ErrInserted: the transcript holds more entries than its head counts.
	ErrInserted = errors.New("entry inserted")
	// ErrEdited: an entry's envelope does not verify where the history needs
	// it to (its ciphertext or another signed field was changed).
	ErrEdited = errors.New("entry edited")
	// ErrForeignGroup: an entry or a message belongs to another group.
	ErrForeignGroup = errors.New("another group's entry")
	// ErrChain: the entries do not hash to the head the transcript states.
	ErrChain = errors.New("transcript chain mismatch")
	// ErrCheckpoint: a member's signed checkpoint attests a history other
	// than the transcript's.
	ErrCheckpoint = errors.New("checkpoint mismatch")
	// ErrEditedText: a message's text is not the text its author signed.
	ErrEditedText = errors.New("edited text")
	// ErrForgedAuthor: a message is not signed by the author it is shown
	// with, or not by the member who sent the entry at its position.
	ErrForgedAuthor = errors.New("forged author")
	// ErrNonMember: a message, or the transcript, is from someone who was
	// not a member of the group.
	ErrNonMember = errors.New("not a member")
	// ErrNotAccepted: a message's position holds no chat message the group
	// accepted.
	ErrNotAccepted = errors.New("not an accepted message")
	// ErrInconsistent: the transcript states something its signed entries
	// contradict (the group's name, a message's id or time).
	ErrInconsistent = errors.New("inconsistent transcript")
	// ErrExporterSignature: the exporter's signature over the transcript
	// does not verify.
	ErrExporterSignature = errors.New("bad exporter signature")
	// ErrUntrusted: a trusted public id did not attest the transcript's
	// end.
	ErrUntrusted = errors.New("untrusted")
	// ErrAttestation: an attestation is malformed, not signed by a member,
	// or contradicts the transcript.
	ErrAttestation = errors.New("bad attestation")
)

// Summary is what a verified transcript shows.
type Summary struct {
	Group      crypto.GroupID
	Name       string
	Exporter   identity.PublicID
	ExportedAt time.Time
	// Entries is the number of log entries in the transcript, Rejected how
	// many of them the group's state machine rejected (duplicate retries,
	// forged or malformed envelopes, ...), as every member did.
	Entries  int
	Rejected int
	// FirstIndex and LastIndex are the log indexes of the first and last
	// entries.
	FirstIndex, LastIndex uint64
	// Head is the transcript chain after the last entry.
	Head crypto.Chain
	// Chats is the number of chat messages the group accepted; Messages is
	// how many of them the exporter decrypted and included.
	Chats    int
	Messages int
	// Unsealed is how many of the decrypted messages the transcript
	// carries the key of, and were checked against their ciphertext.
	Unsealed int
	// Range is set for a transcript of a range: the decrypted messages
	// are those in it only (all of them within it, checked), and the
	// others are in the file as ciphertext only. Nil for a whole
	// transcript.
	Range *Range
	// Authors are the senders of accepted chat messages, in order of their
	// first message.
	Authors []Author
	// Members is everyone who was a member at some point, in join order.
	Members []Member
	// Checkpoints are the accepted checkpoints, in log order.
	Checkpoints []Checkpoint
	// Attested are the members' signed statements of their chain heads
	// that the transcript carries, all consistent with it; Covers says
	// whether one matches the transcript's end (the whole history).
	Attested []Attestation
	// Trusted are the trusted public ids, every one of which attested the
	// transcript's end.
	Trusted []identity.PublicID
}

// Attestation is a member's signed statement, received directly by the
// exporter's node, that its transcript chain had, through log index Index,
// the head this transcript has there.
type Attestation struct {
	Signer identity.PublicID
	Name   string
	Index  uint64
	// Covers is set when the statement reaches the transcript's end: the
	// signer held exactly this history, no entry more or less, up to where
	// the transcript ends.
	Covers bool
}

// Author is a sender of chat messages.
type Author struct {
	ID   identity.PublicID
	Name string // the display name the member joined with
	// Chats is the number of accepted chat messages by this author;
	// Messages how many of them the exporter decrypted.
	Chats    int
	Messages int
}

// Member is a member of the group, current or former.
type Member struct {
	ID       identity.PublicID
	Name     string
	Voter    bool   // at the end of the transcript
	JoinedAt uint64 // log index of the join (or the genesis)
	LeftAt   uint64 // log index of the leave or removal; 0 if still a member
}

// Checkpoint is a member's signed statement, accepted by the group, that the
// transcript chain had the head at Index that this transcript has.
type Checkpoint struct {
	Signer identity.PublicID
	Name   string
	Index  uint64 // the attested index
	At     uint64 // where the checkpoint itself is in the log
}

// checkedMessage is a decrypted message's record, checked by a worker.
type checkedMessage struct {
	rec    *crypto.Message
	record []byte
	sig    []byte
	err    error // from VerifyRecord
	derr   error // the base64 did not decode
}

// Verify checks the transcript doc and returns what it shows. It needs
// nothing but the file: every signature, the order, the hash chain, the
// checkpoints and the decrypted messages are checked against each other and
// against the group's rules, as docs/PROTOCOL.md (section Transcripts) specifies. Each public id
// in trust must be a member somewhere in the history.
//
// On failure, the error names the first problem and wraps one of the errors
// above. Verify never panics, whatever doc holds.
func Verify(doc []byte, trust []identity.PublicID) (*Summary, error) {
	if len(doc) > MaxSize {
		return nil, fmt.Errorf("%w: the file is %d bytes, the limit is %d", ErrTooLarge, len(doc), MaxSize)
	}
	p, err := parse(doc)
	if err != nil {
		return nil, err
	}
	for i := 1; i < len(p.entries); i++ {
		if a, b := p.entries[i-1].Index, p.entries[i].Index; b <= a {
			return nil, fmt.Errorf("%w: the entry at index %d comes after the entry at index %d", ErrReordered, b, a)
		}
	}
	for i := 1; i < len(p.messages); i++ {
		if a, b := p.messages[i-1].index, p.messages[i].index; b <= a {
			return nil, fmt.Errorf("%w: the message at index %d comes after the message at index %d", ErrReordered, b, a)
		}
	}
	if err := checkRange(p); err != nil {
		return nil, err
	}

	// The signatures, on all cores: first the hash of the body for the
	// exporter's signature, then the entries in chunks, then the messages'
	// records. The replay below follows the entry jobs in order.
	var bodyHash [32]byte
	jobs := []func(){func() { bodyHash = sha256.Sum256(p.body) }}
	entries := make([]checked, len(p.entries))
	jobs = append(jobs, verifyJobs(entries, p.frames64, true)...)
	firstMsgJob := len(jobs)
	msgs := make([]checkedMessage, len(p.messages))
	for lo := 0; lo < len(msgs); lo += chunk {
		hi := min(lo+chunk, len(msgs))
		jobs = append(jobs, func() {
			// The records of a job are checked together
			// (crypto.VerifyRecords answers what VerifyRecord does).
			var records, sigs [][]byte
			var at []int
			for i := lo; i < hi; i++ {
				m := &msgs[i]
				if m.record, m.derr = decode64(p.records64[i]); m.derr != nil {
					continue
				}
				if m.sig, m.derr = decode64(p.sigs64[i]); m.derr != nil {
					continue
				}
				records, sigs, at = append(records, m.record), append(sigs, m.sig), append(at, i)
			}
			recs, errs := crypto.VerifyRecords(records, sigs)
			for j, i := range at {
				msgs[i].rec, msgs[i].err = recs[j], errs[j]
			}
		})
	}
	pl := startPool(jobs)
	defer pl.close()

	rp := newReplay(p.group, len(p.entries))
	for i := range p.entries {
		if i%chunk == 0 {
			pl.wait(1 + i/chunk)
		}
		e, c := &p.entries[i], &entries[i]
		switch {
		case c.derr != nil:
			return nil, fmt.Errorf("%w: the frame of the entry at index %d: %v", ErrMalformed, e.Index, c.derr)
		case len(c.frame) == 0:
			return nil, fmt.Errorf("%w: the entry at index %d has an empty frame", ErrMalformed, e.Index)
		}
		rp.apply(e, c)
		if rp.outcomes[i].head != p.chains[i] {
			return nil, divergence(p, rp, i)
		}
	}
	if err := checkHistory(p, rp); err != nil {
		return nil, err
	}

	st := rp.st
	s := &Summary{
		Group: p.group, Name: st.Name, Exporter: p.exporter, ExportedAt: p.exportedAt,
		Entries: len(p.entries), Rejected: rp.rejected, Head: st.Chain, Messages: len(p.messages),
		FirstIndex: p.entries[0].Index, LastIndex: p.entries[len(p.entries)-1].Index,
	}
	members := everyMember(st)
	authors := map[[32]byte]*Author{}
	var order [][32]byte
	for _, o := range rp.outcomes {
		if o.chat == nil {
			continue
		}
		k := o.chat.Sender
		if authors[k] == nil {
			authors[k] = &Author{ID: memberID(members, k), Name: memberName(members, k)}
			order = append(order, k)
		}
		authors[k].Chats++
		s.Chats++
	}

	if members[p.exporter.Sign] == nil || members[p.exporter.Sign].ID != p.exporter {
		return nil, fmt.Errorf("%w: the exporter %s (%s) was never a member of the group", ErrNonMember, p.exporter, p.exporter.Fingerprint())
	}
	for j := range p.messages {
		if j%chunk == 0 {
			pl.wait(firstMsgJob + j/chunk)
		}
		if err := checkMessage(p, rp, &p.messages[j], &msgs[j]); err != nil {
			return nil, err
		}
		authors[msgs[j].rec.Author.Sign].Messages++
		if p.messages[j].hasKey {
			s.Unsealed++
		}
	}

	pl.wait(0)
	if !crypto.VerifySignature(p.exporter.Sign[:], signatureInputHash(bodyHash), p.sig) {
		return nil, fmt.Errorf("%w: the signature of the exporter %s does not verify: the transcript was changed after it was exported", ErrExporterSignature, p.exporter.Fingerprint())
	}
	if s.Attested, err = checkAttestations(p, rp, members); err != nil {
		return nil, err
	}
	for _, t := range trust {
		if m := members[t.Sign]; m == nil || m.ID != t {
			return nil, fmt.Errorf("%w: %s (%s) is not a member anywhere in this group's history", ErrUntrusted, t, t.Fingerprint())
		}
		covered := false
		for _, a := range s.Attested {
			covered = covered || (a.Signer == t && a.Covers)
		}
		if !covered {
			return nil, fmt.Errorf("%w: the end of this transcript is not attested by %s (%s): the transcript holds no statement of %s's head that reaches its end, so nothing shows that %s saw this history; export it again from a node that has talked to them since the last entry",
				ErrUntrusted, t, t.Fingerprint(), memberName(members, t.Sign), memberName(members, t.Sign))
		}
		s.Trusted = append(s.Trusted, t)
	}

	if p.span != nil {
		s.Range = &Range{From: p.span.From, To: p.span.To, Chats: chatsIn(p.span, p.entries, rp.outcomes)}
	}
	for _, k := range order {
		s.Authors = append(s.Authors, *authors[k])
	}
	all := make([]*state.Member, 0, len(members))
	for _, m := range members {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Order < all[j].Order })
	for _, m := range all {
		s.Members = append(s.Members, Member{ID: m.ID, Name: m.Name, Voter: m.Voter && m.LeftAt == 0, JoinedAt: m.JoinedAt, LeftAt: m.LeftAt})
	}
	for _, c := range rp.checks {
		s.Checkpoints = append(s.Checkpoints, Checkpoint{Signer: memberID(members, c.Signer), Name: memberName(members, c.Signer), Index: c.Index, At: c.At})
	}
	return s, nil
}

// everyMember returns the current and former members by signing key.
func everyMember(st *state.State) map[[32]byte]*state.Member {
	out := make(map[[32]byte]*state.Member, len(st.Members)+len(st.Former))
	for k, m := range st.Former {
		out[k] = m
	}
	for k, m := range st.Members {
		out[k] = m
	}
	return out
}

// divergence explains why the chain after entry i is not the one the
// exporter stated there, though it was before: with the most specific cause
// the transcript shows.
func divergence(p *parsed, rp *replay, i int) error {
	e, o := &p.entries[i], &rp.outcomes[i]
	n := uint64(len(p.entries))
	count := fmt.Sprintf("the transcript holds %d entries, its head counts %d", n, p.head.entries)
	switch {
	case n < p.head.entries:
		return fmt.Errorf("%w: an entry before index %d was removed (%s)", ErrRemoved, e.Index, count)
	case n > p.head.entries && o.foreign != nil:
		return fmt.Errorf("%w: the entry at index %d, inserted, belongs to group %s, not to this transcript's group %s (%s)", ErrForeignGroup, e.Index, o.foreign, p.group, count)
	case n > p.head.entries:
		return fmt.Errorf("%w: the entry at index %d was inserted (%s)", ErrInserted, e.Index, count)
	case o.unverified != nil:
		return fmt.Errorf("%w: the envelope of the entry at index %d does not verify (%v): the entry was altered after it was signed", ErrEdited, e.Index, o.unverified)
	case o.foreign != nil:
		return fmt.Errorf("%w: the entry at index %d belongs to group %s, not to this transcript's group %s", ErrForeignGroup, e.Index, o.foreign, p.group)
	}
	return fmt.Errorf("%w: the entry at index %d is not the one the transcript was exported with: an entry was replaced or entries were reordered", ErrChain, e.Index)
}

// memberID and memberName look up a member by signing key. Everyone the
// state machine accepted an entry from is in the map (current or former), so
// the fallbacks (the bare key) are only there to never panic.
func memberID(members map[[32]byte]*state.Member, k [32]byte) identity.PublicID {
	if m := members[k]; m != nil {
		return m.ID
	}
	return identity.PublicID{Sign: k}
}

func memberName(members map[[32]byte]*state.Member, k [32]byte) string {
	if m := members[k]; m != nil {
		return m.Name
	}
	return ""
}

// checkHistory checks what the entries add up to: the head the transcript
// states, the checkpoints the members signed, the genesis.
func checkHistory(p *parsed, rp *replay) error {
	n := uint64(len(p.entries))
	switch {
	case n < p.head.entries:
		after := "the genesis"
		if n > 0 {
			after = "index " + strconv.FormatUint(p.entries[n-1].Index, 10)
		}
		return fmt.Errorf("%w: entries after %s were removed (the transcript holds %d entries, its head counts %d)", ErrRemoved, after, n, p.head.entries)
	case n > p.head.entries:
		return fmt.Errorf("%w: entries were appended after the head (the transcript holds %d entries, its head counts %d)", ErrInserted, n, p.head.entries)
	}
	st := rp.st
	if st.Chain.Index != p.head.index || st.Chain.Head != p.head.hash {
		return fmt.Errorf("%w: the entries hash to %x at index %d, the head states %x at index %d",
			ErrChain, st.Chain.Head[:8], st.Chain.Index, p.head.hash[:8], p.head.index)
	}
	for i, o := range rp.outcomes {
		if m := o.mismatch; m != nil {
			who := memberID(everyMember(st), m.signer)
			there := "has no entry there"
			if m.found {
				there = fmt.Sprintf("has %x there", m.want[:8])
			}
			return fmt.Errorf("%w: the checkpoint at index %d by %s (%s) attests head %x at index %d, but the transcript %s: the history differs from what that member saw",
				ErrCheckpoint, p.entries[i].Index, who, who.Fingerprint(), m.head[:8], m.index, there)
		}
	}
	if len(rp.outcomes) == 0 || rp.outcomes[0].typ != crypto.TypeGenesis || rp.outcomes[0].err != nil {
		return fmt.Errorf("%w: the first entry is not the group's genesis", ErrInconsistent)
	}
	if st.Name != p.name {
		return fmt.Errorf("%w: the transcript names the group %q, its genesis %q", ErrInconsistent, p.name, st.Name)
	}
	return nil
}

// checkMessage checks one decrypted message: its record is signed by its
// author, and it is the chat message the group accepted at its index.
func checkMessage(p *parsed, rp *replay, m *message, c *checkedMessage) error {
	at := fmt.Sprintf("the message at index %d", m.index)
	switch {
	case c.derr != nil:
		return fmt.Errorf("%w: %s: %v", ErrMalformed, at, c.derr)
	case errors.Is(c.err, crypto.ErrSignature):
		return fmt.Errorf("%w: %s: its author's signature on the record does not verify", ErrForgedAuthor, at)
	case c.err != nil:
		return fmt.Errorf("%w: %s: %v", ErrMalformed, at, c.err)
	}
	i, found := entryAt(p.entries, m.index)
	if !found {
		return fmt.Errorf("%w: %s: the transcript has no entry at that index", ErrNotAccepted, at)
	}
	o := &rp.outcomes[i]
	rec := c.rec
	switch {
	case o.unverified != nil:
		return fmt.Errorf("%w: %s: the envelope of its entry does not verify (%v): the entry was altered after it was signed", ErrEdited, at, o.unverified)
	case o.foreign != nil:
		return fmt.Errorf("%w: %s: its entry belongs to group %s", ErrForeignGroup, at, o.foreign)
	case o.typ != crypto.TypeChat:
		return fmt.Errorf("%w: %s: the entry there is a %s, not a chat message", ErrNotAccepted, at, o.typ)
	case o.nonMember:
		return fmt.Errorf("%w: %s: its sender %x was not a member of the group at that position", ErrNonMember, at, o.sender[:8])
	case o.err != nil:
		return fmt.Errorf("%w: %s: the group rejected the chat entry there (%v)", ErrNotAccepted, at, o.err)
	}
	chat := o.chat
	switch {
	case rec.Author != m.author:
		return fmt.Errorf("%w: %s: shown as written by %s, but its record is signed by %s", ErrForgedAuthor, at, m.author.Fingerprint(), rec.Author.Fingerprint())
	case rec.Author.Sign != chat.Sender:
		return fmt.Errorf("%w: %s: its record is signed by %s, but the entry was sent by %x", ErrForgedAuthor, at, rec.Author.Fingerprint(), chat.Sender[:8])
	case rec.Group != p.group:
		return fmt.Errorf("%w: %s: its record belongs to group %s", ErrForeignGroup, at, rec.Group)
	case string(rec.Body) != m.text:
		return fmt.Errorf("%w: %s: its text is not the text its author signed", ErrEditedText, at)
	case rec.ID != chat.ID:
		return fmt.Errorf("%w: %s: its record has message id %x, the entry %x", ErrInconsistent, at, rec.ID[:8], chat.ID[:8])
	case m.id != rec.ID:
		return fmt.Errorf("%w: %s: shown with message id %x, its record has %x", ErrInconsistent, at, m.id[:8], rec.ID[:8])
	case !m.sentAt.Equal(time.Unix(0, rec.Time)):
		return fmt.Errorf("%w: %s: shown as sent at %s, its record says %s", ErrInconsistent, at, formatTime(m.sentAt), formatTime(time.Unix(0, rec.Time)))
	}
	// The message's sender key came in the key header of the entry at
	// chat.KeyAt (the state machine registered it there): the exporter
	// could only have decrypted the message if it is among the recipients
	// of that header.
	k, found := entryAt(p.entries, chat.KeyAt)
	var keys [][32]byte
	if found && rp.outcomes[k].chat != nil {
		if info, err := crypto.ReadSealed(rp.outcomes[k].chat.Sealed); err == nil {
			keys = info.Recipients
		}
	}
	if !slices.Contains(keys, p.exporter.Sign) {
		return fmt.Errorf("%w: %s: the exporter is not among the recipients of its sender key's header (at index %d), so could not have decrypted it", ErrInconsistent, at, chat.KeyAt)
	}
	// With its key, the message is checked against the ciphertext its
	// author sent: the text shown is what the group received.
	if m.hasKey {
		pt, err := crypto.UnsealWithMessageKey(m.key, p.group, chat.Sealed, chat.Sender)
		if err != nil {
			return fmt.Errorf("%w: %s: the key it shows does not open its entry's ciphertext", ErrEditedText, at)
		}
		if len(pt) != len(c.record)+len(c.sig) || !bytes.Equal(pt[:len(c.record)], c.record) || !bytes.Equal(pt[len(c.record):], c.sig) {
			return fmt.Errorf("%w: %s: its entry's ciphertext holds another record than the one shown", ErrEditedText, at)
		}
	}
	return nil
}

// entryAt finds the entry at log index idx in entries, which are in index
// order.
func entryAt(entries []Entry, idx uint64) (int, bool) {
	return slices.BinarySearchFunc(entries, idx, func(e Entry, idx uint64) int { return cmp.Compare(e.Index, idx) })
}

// checkAttestations checks each attestation of p against the replayed state
// st: a TypeHead envelope of the group, signed by a member somewhere in the
// history, whose head through its index is the transcript's. A statement
// through an index past the transcript's last entry reaches the end when its
// head is the transcript's last (no entry between); one with another head
// there was made of a longer history, and shows nothing about this one.
func checkAttestations(p *parsed, rp *replay, members map[[32]byte]*state.Member) ([]Attestation, error) {
	st := rp.st
	var out []Attestation
	for i, frame := range p.attestations {
		env, err := crypto.Verify(frame)
		if err != nil {
			return nil, fmt.Errorf("%w: attestation %d does not verify: %v", ErrAttestation, i, err)
		}
		m := members[env.Sender]
		if env.Type != crypto.TypeHead || env.Group != p.group || m == nil {
			return nil, fmt.Errorf("%w: attestation %d is not a statement of this group's head by one of its members", ErrAttestation, i)
		}
		var b state.CheckpointBody
		if err := state.Decode(env.Payload, &b); err != nil || len(b.Head) != 32 || b.Index == 0 {
			return nil, fmt.Errorf("%w: attestation %d by %s is malformed", ErrAttestation, i, m.ID.Fingerprint())
		}
		a := Attestation{Signer: m.ID, Name: m.Name, Index: b.Index}
		if b.Index <= st.Applied {
			if head := rp.headThrough(b.Index); head != [32]byte(b.Head) {
				return nil, fmt.Errorf("%w: %s (%s) signed that the group's history through index %d has head %x, and this transcript's has %x: %s saw another history",
					ErrAttestation, m.Name, m.ID.Fingerprint(), b.Index, b.Head[:8], head[:8], m.Name)
			}
			a.Covers = b.Index == st.Applied
		} else {
			a.Covers = [32]byte(b.Head) == st.Chain.Head
		}
		out = append(out, a)
	}
	return out, nil
}
