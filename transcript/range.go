package transcript

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file is the range of a transcript: a person names its ends (a
// message id, a log index or a time, see [ParseBound]); [BuildWith]
// resolves them to log indexes against the exporter's log, includes the
// decrypted messages in that range only, and states the range in the signed
// body, where [Verify] checks that every message shown lies within it.
// Every entry stays in the transcript, so the chain, the checkpoints and the
// attestations are checked as for a whole transcript; the messages outside
// the range stay ciphertext.

// Errors of [BuildWith] for a range it cannot export. They are not
// [Verify]'s: they say what is wrong with a request, not with a file.
var (
	// ErrNoSuchMessage: a bound names a message id that no accepted chat
	// message of the log has.
	ErrNoSuchMessage = errors.New("unknown message")
	// ErrEmptyRange: no message the exporter can read lies in the range.
	ErrEmptyRange = errors.New("empty range")
	// ErrBackwardRange: the range's start comes after its end.
	ErrBackwardRange = errors.New("backward range")
)

// Range is the part of the log a transcript shows the messages of: log
// indexes From to To, both included. The transcript holds every entry, as a
// whole one does; the messages outside the range are there as ciphertext
// only.
type Range struct {
	From, To uint64
	// Chats is the number of chat messages the group accepted in the
	// range (the summary's Messages are those the exporter decrypted).
	Chats int
}

// Bound is one end of a range as a person names it: a log index, the id of
// a message, or a time. The zero Bound is open: the start (or the end) of
// the log.
type Bound struct {
	// Index is a log index (1 or more), or 0.
	Index uint64
	// ID is a message id, when HasID is set.
	ID    [16]byte
	HasID bool
	// Time, when not zero, is a time: the range starts with the first
	// message (in log order) after the last one sent before it, or ends
	// with the last message before the first one sent after it, by the
	// times their authors' records state (which a member can falsify: so
	// a false time narrows the range, never widens it).
	Time time.Time
}

// IsZero reports whether b is open.
func (b Bound) IsZero() bool { return b.Index == 0 && !b.HasID && b.Time.IsZero() }

// String names the bound for a person.
func (b Bound) String() string {
	switch {
	case b.HasID:
		return "message " + hex.EncodeToString(b.ID[:])
	case b.Index != 0:
		return "log index " + strconv.FormatUint(b.Index, 10)
	case !b.Time.IsZero():
		return b.Time.UTC().Format(time.RFC3339Nano)
	}
	return "the end of the log"
}

// ParseBound reads one end of a range: a message id (32 hexadecimal
// digits), a log index (a decimal number, 1 or more), an RFC 3339 time, or a
// date (YYYY-MM-DD, in UTC), which means the start of that day for the
// range's start and its end (the last nanosecond) when end is set.
func ParseBound(s string, end bool) (Bound, error) {
	if len(s) == 32 {
		var id [16]byte
		if _, err := hex.Decode(id[:], []byte(s)); err == nil {
			return Bound{ID: id, HasID: true}, nil
		}
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		i, err := strconv.ParseUint(s, 10, 64)
		switch {
		case err != nil:
			return Bound{}, fmt.Errorf("log index %s is out of range", s)
		case i == 0:
			return Bound{}, fmt.Errorf("log index 0: log indexes start at 1")
		}
		return Bound{Index: i}, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.UTC); err == nil {
		if end {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
		return Bound{Time: t}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil && !t.IsZero() {
		return Bound{Time: t}, nil
	}
	return Bound{}, fmt.Errorf("%q is neither a message id (32 hexadecimal digits), a log index, a date (2026-12-04) nor an RFC 3339 time (2026-12-04T15:04:05Z)", s)
}

// CheckOrder returns an error wrapping [ErrBackwardRange] when from and
// to are of one kind (two log indexes, or two times) and from comes after
// to. Bounds of other kinds are only ordered once resolved against a log,
// which [BuildWith] does.
func CheckOrder(from, to Bound) error {
	switch {
	case from.Index != 0 && to.Index != 0 && from.Index > to.Index,
		!from.Time.IsZero() && !to.Time.IsZero() && from.Time.After(to.Time):
		return fmt.Errorf("%w: %s comes after %s", ErrBackwardRange, from, to)
	}
	return nil
}

// resolveRange resolves from and to to log indexes against the log:
// entries, their outcomes and the messages the exporter opened (by their
// chat's position in chats). It fails when the range holds no message the
// exporter can read.
func resolveRange(from, to Bound, entries []Entry, outcomes []outcome, opened []*message) (*Range, error) {
	if err := CheckOrder(from, to); err != nil {
		return nil, err
	}
	first, last := entries[0].Index, entries[len(entries)-1].Index
	lo, err := resolveBound(from, false, first, outcomes, opened)
	if err != nil {
		return nil, err
	}
	// An open end is past any index, so that only the log's end, not
	// the range's, can come before a start beyond it.
	hi, err := resolveBound(to, true, math.MaxUint64, outcomes, opened)
	if err != nil {
		return nil, err
	}
	if lo > hi {
		if !from.Time.IsZero() || !to.Time.IsZero() {
			return nil, fmt.Errorf("%w: no message you can read was sent between %s and %s", ErrEmptyRange, boundText(from, "the start"), boundText(to, "the end"))
		}
		return nil, fmt.Errorf("%w: %s comes after %s", ErrBackwardRange, resolved(from, lo), resolved(to, hi))
	}
	if hi > last {
		hi = last
	}
	if lo > hi {
		return nil, fmt.Errorf("%w: the range starts at log index %d, after the log's last entry (index %d)", ErrEmptyRange, lo, last)
	}
	for _, m := range opened {
		if m != nil && m.index >= lo && m.index <= hi {
			return &Range{From: lo, To: hi}, nil
		}
	}
	return nil, fmt.Errorf("%w: no message you can read lies between log index %d and %d", ErrEmptyRange, lo, hi)
}

// resolved names b with the log index it resolved to.
func resolved(b Bound, idx uint64) string {
	if b.Index != 0 {
		return b.String()
	}
	return fmt.Sprintf("%s (log index %d)", b, idx)
}

func boundText(b Bound, open string) string {
	if b.IsZero() {
		return open
	}
	return b.String()
}

// resolveBound returns the log index b names; open is the index an open
// bound stands for.
func resolveBound(b Bound, end bool, open uint64, outcomes []outcome, opened []*message) (uint64, error) {
	switch {
	case b.Index != 0:
		return b.Index, nil
	case b.HasID:
		for _, o := range outcomes {
			if c := o.chat; c != nil && c.ID == b.ID {
				return c.Index, nil
			}
		}
		return 0, fmt.Errorf("%w: no message in the group's log has the id %x", ErrNoSuchMessage, b.ID)
	// The times are the authors' own statements, and a member's modified
	// node can state any: so a time bound never reaches past a message
	// stated as sent on its other side. The start is the first message
	// after the last one sent before the time, the end the last before
	// the first one sent after it. A false time can only narrow the range
	// (and honest clocks, a few seconds apart, move it by a message at
	// most); taking the first message at or after the time instead, one
	// stamped a year ahead early in the log would pull the start back to
	// it, and the export would show the year.
	case !b.Time.IsZero() && !end:
		idx := uint64(0)
		for i := len(opened) - 1; i >= 0; i-- {
			if m := opened[i]; m != nil {
				if m.sentAt.Before(b.Time) {
					break
				}
				idx = m.index
			}
		}
		if idx == 0 {
			return 0, fmt.Errorf("%w: no message you can read was sent at or after %s", ErrEmptyRange, b)
		}
		return idx, nil
	case !b.Time.IsZero():
		idx := uint64(0)
		for _, m := range opened {
			if m != nil {
				if m.sentAt.After(b.Time) {
					break
				}
				idx = m.index
			}
		}
		if idx == 0 {
			return 0, fmt.Errorf("%w: no message you can read was sent at or before %s", ErrEmptyRange, b)
		}
		return idx, nil
	}
	return open, nil
}

// checkRange checks the range a transcript states against its entries and
// its messages (which are in index order): it lies within the log, and
// every message shown lies within it.
func checkRange(p *parsed) error {
	r := p.span
	if r == nil {
		return nil
	}
	stated := fmt.Sprintf("the range the transcript states (log index %d to %d)", r.From, r.To)
	switch {
	case r.From == 0:
		return fmt.Errorf("%w: %s starts at 0, and log indexes start at 1", ErrInconsistent, stated)
	case r.From > r.To:
		return fmt.Errorf("%w: %s starts after it ends", ErrInconsistent, stated)
	case len(p.entries) > 0 && r.To > p.entries[len(p.entries)-1].Index:
		return fmt.Errorf("%w: %s ends after the last entry (index %d)", ErrInconsistent, stated, p.entries[len(p.entries)-1].Index)
	}
	for _, m := range p.messages {
		if m.index < r.From || m.index > r.To {
			return fmt.Errorf("%w: the message at index %d lies outside %s: a range transcript shows the messages in its range only", ErrInconsistent, m.index, stated)
		}
	}
	return nil
}

// chatsIn counts the accepted chat messages whose entries lie in r.
func chatsIn(r *Range, entries []Entry, outcomes []outcome) int {
	n := 0
	for i, o := range outcomes {
		if o.chat != nil && entries[i].Index >= r.From && entries[i].Index <= r.To {
			n++
		}
	}
	return n
}
