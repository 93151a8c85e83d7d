package transcript

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Version is the transcript format version, the "version" field of every
// transcript. [Verify] rejects any other value with [ErrVersion].
const Version = 1

// MaxSize is the largest transcript [Verify] reads: 1 GiB, room for several
// hundred thousand messages.
const MaxSize = 1 << 30

// signatureDomain starts the exporter's signature input, so that no signature
// over a transcript can be taken for an envelope or a message record signed
// with the same key, nor the reverse (see docs/PROTOCOL.md (section Transcripts)).
const signatureDomain = "DeMeS transcript v1\x00"

// Kind says which kind of raft log entry carried a frame.
type Kind uint8

// The kinds of entries a transcript holds.
const (
	// KindEntry is a normal raft entry: its data is the frame.
	KindEntry Kind = iota + 1
	// KindConf is a raft membership change: its context is the frame that
	// authorises it, and the change itself is in [Entry.Change] and
	// [Entry.NodeID].
	KindConf
)

// Entry is one committed entry of a group's raft log that carries a signed
// envelope, as a transcript holds it.
type Entry struct {
	// Index is the entry's raft log index.
	Index uint64
	Kind  Kind
	// Change is the raft change of a KindConf entry: state.AddVoter,
	// state.AddLearner or state.Remove, or 0 for any other raft change type
	// (which the state machine rejects). NodeID is the raft node id it
	// names. Both are zero for a KindEntry.
	Change state.ConfKind
	NodeID uint64
	// Frame is the exact signed envelope: the entry's data, or the change's
	// context.
	Frame []byte
}

// document is the content of a transcript: the "body" the exporter signs.
type document struct {
	group      crypto.GroupID
	name       string
	exporter   identity.PublicID
	exportedAt time.Time
	entries    []Entry
	// chains[i] is the transcript chain head after entries[i]. It is
	// redundant (a verifier recomputes it), and there so that a verifier
	// can point at the first entry that differs from what the exporter
	// signed, and a reader can match checkpoints and message heads by eye.
	chains   [][32]byte
	messages []message
	head     head
}

// message is one message the exporter decrypted: the fields people read, and
// the signed record they come from.
type message struct {
	index  uint64
	id     [16]byte
	author identity.PublicID
	text   string
	sentAt time.Time
	record []byte
	sig    []byte
}

// head is the transcript chain after the last entry, and how many entries
// the transcript holds.
type head struct {
	index   uint64
	entries uint64
	hash    [32]byte
}

// changeNames are the text forms of Entry.Change.
var changeNames = map[state.ConfKind]string{
	state.AddVoter:   "add-voter",
	state.AddLearner: "add-learner",
	state.Remove:     "remove",
	0:                "other",
}

func changeByName(s string) (state.ConfKind, bool) {
	for k, n := range changeNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// marshal returns the whole transcript: the body, signed by exporter. The
// encoding is the one canonical form that the reader accepts (see
// docs/PROTOCOL.md (section Transcripts)): compact JSON, fields in a fixed order, one line.
func (d *document) marshal(exporter *identity.Identity) ([]byte, error) {
	if exporter.Public() != d.exporter {
		return nil, fmt.Errorf("sign transcript: the exporter's identity does not match the document")
	}
	size := 256 + len(d.name)
	for _, e := range d.entries {
		size += 96 + base64.StdEncoding.EncodedLen(len(e.Frame))
	}
	for _, m := range d.messages {
		size += 256 + len(m.text) + base64.StdEncoding.EncodedLen(len(m.record))
	}
	b := make([]byte, 0, size)
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, Version, 10)
	b = append(b, `,"body":`...)
	start := len(b)
	b, err := d.appendBody(b)
	if err != nil {
		return nil, err
	}
	sig := exporter.Sign(signatureInput(b[start:]))
	b = append(b, `,"signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, sig)
	return append(b, "\"}\n"...), nil
}

// signatureInput is what the exporter signs: the domain string and the
// SHA-256 of the exact body bytes. Hashing first lets a verifier hash the
// body while it checks the entries, and keeps a large body from being hashed
// twice more inside Ed25519.
func signatureInput(body []byte) []byte {
	return signatureInputHash(sha256.Sum256(body))
}

func signatureInputHash(h [32]byte) []byte {
	return append([]byte(signatureDomain), h[:]...)
}

func (d *document) appendBody(b []byte) ([]byte, error) {
	b = append(b, `{"group_id":"`...)
	b = hex.AppendEncode(b, d.group[:])
	b = append(b, `","name":`...)
	var err error
	if b, err = appendString(b, d.name); err != nil {
		return nil, fmt.Errorf("group name: %w", err)
	}
	b = append(b, `,"exporter":"`...)
	b = append(b, d.exporter.String()...)
	b = append(b, `","exported_at":"`...)
	b = append(b, formatTime(d.exportedAt)...)
	b = append(b, `","entries":[`...)
	for i, e := range d.entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendUint(b, e.Index, 10)
		switch e.Kind {
		case KindEntry:
			b = append(b, `,"kind":"entry","chain":"`...)
		case KindConf:
			name, ok := changeNames[e.Change]
			if !ok {
				return nil, fmt.Errorf("entry at index %d: unknown change %d", e.Index, e.Change)
			}
			b = append(b, `,"kind":"conf","change":{"type":"`...)
			b = append(b, name...)
			b = append(b, `","node_id":"`...)
			b = hex.AppendEncode(b, binary.BigEndian.AppendUint64(nil, e.NodeID))
			b = append(b, `"},"chain":"`...)
		default:
			return nil, fmt.Errorf("entry at index %d: unknown kind %d", e.Index, e.Kind)
		}
		b = hex.AppendEncode(b, d.chains[i][:])
		b = append(b, `","frame":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Frame)
		b = append(b, `"}`...)
	}
	b = append(b, `],"messages":[`...)
	for i, m := range d.messages {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendUint(b, m.index, 10)
		b = append(b, `,"id":"`...)
		b = hex.AppendEncode(b, m.id[:])
		b = append(b, `","author":"`...)
		b = append(b, m.author.String()...)
		b = append(b, `","text":`...)
		if b, err = appendString(b, m.text); err != nil {
			return nil, fmt.Errorf("message at index %d: %w", m.index, err)
		}
		b = append(b, `,"sent_at":"`...)
		b = append(b, formatTime(m.sentAt)...)
		b = append(b, `","record":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.record)
		b = append(b, `","signature":"`...)
		b = base64.StdEncoding.AppendEncode(b, m.sig)
		b = append(b, `"}`...)
	}
	b = append(b, `],"head":{"index":`...)
	b = strconv.AppendUint(b, d.head.index, 10)
	b = append(b, `,"entries":`...)
	b = strconv.AppendUint(b, d.head.entries, 10)
	b = append(b, `,"hash":"`...)
	b = hex.AppendEncode(b, d.head.hash[:])
	return append(b, `"}}`...), nil
}

// appendString appends s as a JSON string in the one form the reader
// accepts: '"' and '\' escaped with a backslash, newline, carriage return and
// tab as \n, \r and \t, the other control characters as \u00xx, everything
// else (all of Unicode) as its UTF-8 bytes.
func appendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("text is not UTF-8")
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// parsed is a transcript as the reader found it. The base64 of the frames,
// records and record signatures is kept undecoded, so that decoding can
// happen on all cores together with the signature checks.
type parsed struct {
	document
	body      []byte // the exact bytes of the "body" value
	sig       []byte // the exporter's signature
	frames64  [][]byte
	records64 [][]byte
	sigs64    [][]byte
}

// reader parses the canonical form of a transcript. It accepts exactly what
// [document.marshal] writes: no white space, fields in order, every value in
// its one encoding. So whatever parses re-encodes to the same bytes, and no
// two readers can disagree about what a signed transcript says (no duplicate
// fields, no case-folded names, no alternative escapes).
type reader struct {
	b     []byte
	off   int
	where string // what is being read, for errors
	// ids remembers the public ids read so far: a transcript names the
	// same few authors many times, and parsing one costs a bech32 checksum.
	ids map[string]identity.PublicID
}

func (r *reader) truncated() error {
	return fmt.Errorf("%w: the file ends at byte %d, in %s", ErrTruncated, len(r.b), r.where)
}

func (r *reader) malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, r.where, r.off, fmt.Sprintf(format, args...))
}

// lit consumes the literal s: punctuation and field names.
func (r *reader) lit(s string) error {
	rest := r.b[r.off:]
	if len(rest) >= len(s) && string(rest[:len(s)]) == s {
		r.off += len(s)
		return nil
	}
	n := 0
	for n < len(rest) && n < len(s) && rest[n] == s[n] {
		n++
	}
	if n == len(rest) {
		return r.truncated()
	}
	// Name an unexpected field when that is what stands here.
	if len(s) > 2 && (s[:2] == `,"` || s[:2] == `{"`) && len(rest) > 2 && rest[0] == s[0] && rest[1] == '"' {
		end := bytes.IndexByte(rest[2:min(len(rest), 66)], '"')
		want, _, _ := strings.Cut(s[2:], `"`)
		if end >= 0 && 2+end+1 < len(rest) && rest[2+end+1] == ':' && string(rest[2:2+end]) != want {
			return r.malformed("unexpected field %q, want %q", rest[2:2+end], want)
		}
	}
	r.off += n
	return r.unexpected(strconv.Quote(s[n : n+1]))
}

// unexpected reports the byte at r.off, where want should be.
func (r *reader) unexpected(want string) error {
	switch c := r.b[r.off]; c {
	case ' ', '\t', '\n', '\r':
		return r.malformed("unexpected white space: the file was reformatted, and only the exact file as exported can be verified")
	default:
		return r.malformed("found %q, want %s", c, want)
	}
}

// peek reports whether the next byte is c.
func (r *reader) peek(c byte) bool { return r.off < len(r.b) && r.b[r.off] == c }

// uint reads an unsigned decimal integer without leading zeros.
func (r *reader) uint() (uint64, error) {
	start := r.off
	for r.off < len(r.b) && r.b[r.off] >= '0' && r.b[r.off] <= '9' {
		r.off++
	}
	if r.off == len(r.b) {
		return 0, r.truncated()
	}
	digits := r.b[start:r.off]
	switch {
	case len(digits) == 0:
		return 0, r.unexpected("a number")
	case len(digits) > 1 && digits[0] == '0':
		r.off = start
		return 0, r.malformed("number with a leading zero")
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		r.off = start
		return 0, r.malformed("number out of range")
	}
	return v, nil
}

// str reads a string written by appendString.
func (r *reader) str(max int) (string, error) {
	if err := r.lit(`"`); err != nil {
		return "", err
	}
	start := r.off
	var out []byte // only for strings with escapes
	for {
		if r.off == len(r.b) {
			return "", r.truncated()
		}
		if r.off-start > 6*max+6 {
			return "", fmt.Errorf("%w: %s at byte %d: text longer than %d bytes", ErrTooLarge, r.where, start, max)
		}
		c := r.b[r.off]
		switch {
		case c == '"':
			var s string
			if out == nil {
				s = string(r.b[start:r.off])
			} else {
				s = string(out)
			}
			if !utf8.ValidString(s) {
				r.off = start
				return "", r.malformed("text is not UTF-8")
			}
			if len(s) > max {
				return "", fmt.Errorf("%w: %s at byte %d: text of %d bytes, limit %d", ErrTooLarge, r.where, start, len(s), max)
			}
			r.off++
			return s, nil
		case c < 0x20:
			return "", r.malformed("unescaped control character in text")
		case c == '\\':
			if out == nil {
				out = append([]byte(nil), r.b[start:r.off]...)
			}
			if r.off+1 >= len(r.b) {
				return "", r.truncated()
			}
			e := r.b[r.off+1]
			switch e {
			case '"', '\\':
				out = append(out, e)
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if r.off+6 > len(r.b) {
					return "", r.truncated()
				}
				x := r.b[r.off+2 : r.off+6]
				v, err := strconv.ParseUint(string(x), 16, 8)
				// Only control characters other than \n, \r and \t are
				// written this way, in lower case.
				if err != nil || x[0] != '0' || x[1] != '0' || v >= 0x20 || v == '\n' || v == '\r' || v == '\t' ||
					string(x) != fmt.Sprintf("%04x", v) {
					return "", r.malformed("escape \\u%s is not in canonical form", x)
				}
				out = append(out, byte(v))
				r.off += 4
			default:
				return "", r.malformed("escape \\%c is not in canonical form", e)
			}
			r.off += 2
			continue
		default:
			if out != nil {
				out = append(out, c)
			}
		}
		r.off++
	}
}

// raw64 reads a base64 string, leaving it undecoded; decode64 decodes it.
// max is the largest decoded length allowed.
func (r *reader) raw64(max int) ([]byte, error) {
	if err := r.lit(`"`); err != nil {
		return nil, err
	}
	end := bytes.IndexByte(r.b[r.off:], '"')
	if end < 0 {
		return nil, r.truncated()
	}
	if end > base64.StdEncoding.EncodedLen(max) {
		return nil, fmt.Errorf("%w: %s at byte %d: more than %d bytes", ErrTooLarge, r.where, r.off, max)
	}
	s := r.b[r.off : r.off+end]
	r.off += end + 1
	return s, nil
}

// decode64 decodes padded standard base64 in its one canonical form.
func decode64(s []byte) ([]byte, error) {
	// The decoder skips line breaks even in strict mode; a JSON string
	// cannot hold raw ones, and a canonical transcript has none.
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return nil, fmt.Errorf("line break in base64")
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(out, s)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// hexFixed reads a string of exactly len(dst) bytes in lower-case hex.
func (r *reader) hexFixed(dst []byte) error {
	if err := r.lit(`"`); err != nil {
		return err
	}
	n := 2 * len(dst)
	if r.off+n+1 > len(r.b) {
		return r.truncated()
	}
	x := r.b[r.off : r.off+n]
	for _, c := range x {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return r.malformed("want %d lower-case hexadecimal digits", n)
		}
	}
	hex.Decode(dst, x) // cannot fail: checked above
	r.off += n
	return r.lit(`"`)
}

func (r *reader) publicID() (identity.PublicID, error) {
	start := r.off
	s, err := r.str(256)
	if err != nil {
		return identity.PublicID{}, err
	}
	if p, ok := r.ids[s]; ok {
		return p, nil
	}
	p, err := identity.ParsePublicID(s)
	if err == nil && p.String() == s {
		if r.ids == nil {
			r.ids = map[string]identity.PublicID{}
		}
		r.ids[s] = p
		return p, nil
	}
	r.off = start
	if err == nil {
		return p, r.malformed("public id not in canonical form")
	}
	return p, r.malformed("%v", err)
}

func (r *reader) time() (time.Time, error) {
	start := r.off
	s, err := r.str(64)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || formatTime(t) != s {
		r.off = start
		return time.Time{}, r.malformed("want an RFC 3339 time in UTC, with trailing zeros of the fraction left out")
	}
	return t, nil
}

// list reads the items of a JSON array whose "[" was read.
func (r *reader) list(item func(i int) error) error {
	if r.peek(']') {
		r.off++
		return nil
	}
	for i := 0; ; i++ {
		if err := item(i); err != nil {
			return err
		}
		if r.off == len(r.b) {
			return r.truncated()
		}
		switch r.b[r.off] {
		case ',':
			r.off++
		case ']':
			r.off++
			return nil
		default:
			return r.unexpected(`"," or "]"`)
		}
	}
}

// parse reads a transcript. It checks the syntax and the form of every value,
// nothing that needs a signature or the group's state.
func parse(doc []byte) (*parsed, error) {
	p := &parsed{}
	r := &reader{b: doc, where: "the transcript"}
	if len(doc) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrTruncated)
	}
	if err := r.lit(`{"version":`); err != nil {
		return nil, err
	}
	v, err := r.uint()
	if err != nil {
		return nil, err
	}
	if v != Version {
		return nil, fmt.Errorf("%w: the transcript is version %d, this program reads version %d", ErrVersion, v, Version)
	}
	if err := r.lit(`,"body":`); err != nil {
		return nil, err
	}
	start := r.off
	if err := parseBody(r, p); err != nil {
		return nil, err
	}
	p.body = doc[start:r.off]
	r.where = "the exporter's signature"
	if err := r.lit(`,"signature":`); err != nil {
		return nil, err
	}
	s64, err := r.raw64(64)
	if err != nil {
		return nil, err
	}
	if p.sig, err = decode64(s64); err != nil || len(p.sig) != 64 {
		return nil, r.malformed("want 64 bytes in base64")
	}
	r.where = "the transcript's end"
	if err := r.lit("}\n"); err != nil {
		return nil, err
	}
	if r.off != len(doc) {
		return nil, r.malformed("data after the end of the transcript")
	}
	return p, nil
}

func parseBody(r *reader, p *parsed) error {
	var err error
	r.where = "the body"
	if err = r.lit(`{"group_id":`); err != nil {
		return err
	}
	if err = r.hexFixed(p.group[:]); err != nil {
		return err
	}
	if err = r.lit(`,"name":`); err != nil {
		return err
	}
	if p.name, err = r.str(crypto.MaxFrame); err != nil {
		return err
	}
	if err = r.lit(`,"exporter":`); err != nil {
		return err
	}
	if p.exporter, err = r.publicID(); err != nil {
		return err
	}
	if err = r.lit(`,"exported_at":`); err != nil {
		return err
	}
	if p.exportedAt, err = r.time(); err != nil {
		return err
	}
	if err = r.lit(`,"entries":[`); err != nil {
		return err
	}
	if err = r.list(func(i int) error { return parseEntry(r, p, i) }); err != nil {
		return err
	}
	r.where = "the body"
	if err = r.lit(`,"messages":[`); err != nil {
		return err
	}
	if err = r.list(func(i int) error { return parseMessage(r, p, i) }); err != nil {
		return err
	}
	r.where = "the head"
	if err = r.lit(`,"head":{"index":`); err != nil {
		return err
	}
	if p.head.index, err = r.uint(); err != nil {
		return err
	}
	if err = r.lit(`,"entries":`); err != nil {
		return err
	}
	if p.head.entries, err = r.uint(); err != nil {
		return err
	}
	if err = r.lit(`,"hash":`); err != nil {
		return err
	}
	if err = r.hexFixed(p.head.hash[:]); err != nil {
		return err
	}
	return r.lit(`}}`)
}

func parseEntry(r *reader, p *parsed, i int) error {
	r.where = "entries[" + strconv.Itoa(i) + "]"
	e := Entry{Kind: KindEntry}
	var err error
	if err = r.lit(`{"index":`); err != nil {
		return err
	}
	if e.Index, err = r.uint(); err != nil {
		return err
	}
	if err = r.lit(`,"kind":`); err != nil {
		return err
	}
	start := r.off
	kind, err := r.str(16)
	if err != nil {
		return err
	}
	switch kind {
	case "entry":
	case "conf":
		e.Kind = KindConf
		if err = r.lit(`,"change":{"type":`); err != nil {
			return err
		}
		start := r.off
		name, err := r.str(16)
		if err != nil {
			return err
		}
		var ok bool
		if e.Change, ok = changeByName(name); !ok {
			r.off = start
			return r.malformed("unknown change type %q", name)
		}
		if err = r.lit(`,"node_id":`); err != nil {
			return err
		}
		var id [8]byte
		if err = r.hexFixed(id[:]); err != nil {
			return err
		}
		e.NodeID = binary.BigEndian.Uint64(id[:])
		if err = r.lit(`}`); err != nil {
			return err
		}
	default:
		r.off = start
		return r.malformed("unknown entry kind %q", kind)
	}
	if err = r.lit(`,"chain":`); err != nil {
		return err
	}
	var chain [32]byte
	if err = r.hexFixed(chain[:]); err != nil {
		return err
	}
	if err = r.lit(`,"frame":`); err != nil {
		return err
	}
	f64, err := r.raw64(crypto.MaxFrame)
	if err != nil {
		return err
	}
	if err = r.lit(`}`); err != nil {
		return err
	}
	p.entries = append(p.entries, e)
	p.chains = append(p.chains, chain)
	p.frames64 = append(p.frames64, f64)
	return nil
}

func parseMessage(r *reader, p *parsed, i int) error {
	r.where = "messages[" + strconv.Itoa(i) + "]"
	var m message
	var err error
	if err = r.lit(`{"index":`); err != nil {
		return err
	}
	if m.index, err = r.uint(); err != nil {
		return err
	}
	if err = r.lit(`,"id":`); err != nil {
		return err
	}
	if err = r.hexFixed(m.id[:]); err != nil {
		return err
	}
	if err = r.lit(`,"author":`); err != nil {
		return err
	}
	if m.author, err = r.publicID(); err != nil {
		return err
	}
	if err = r.lit(`,"text":`); err != nil {
		return err
	}
	if m.text, err = r.str(crypto.MaxBody); err != nil {
		return err
	}
	if err = r.lit(`,"sent_at":`); err != nil {
		return err
	}
	if m.sentAt, err = r.time(); err != nil {
		return err
	}
	if err = r.lit(`,"record":`); err != nil {
		return err
	}
	rec64, err := r.raw64(crypto.MaxRecord)
	if err != nil {
		return err
	}
	if err = r.lit(`,"signature":`); err != nil {
		return err
	}
	sig64, err := r.raw64(64)
	if err != nil {
		return err
	}
	if err = r.lit(`}`); err != nil {
		return err
	}
	p.messages = append(p.messages, m)
	p.records64 = append(p.records64, rec64)
	p.sigs64 = append(p.sigs64, sig64)
	return nil
}
