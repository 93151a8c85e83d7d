package transcript

import (
	"bytes"
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

// This file is the transcript reader. Its reads chain as x/crypto's
// cryptobyte does: each read consumes one value and reports whether it could,
// and the first that cannot records why in the reader's err, so a field list
// reads as one condition (`if !r.lit(..) || !r.uint(..)`).

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
	// item is set when where names a list, and i is the index in it: the
	// place is where[i], written out only for an error (not for each of a
	// hundred thousand entries).
	item bool
	i    int
	err  error // why the last read that failed failed
	// ids remembers the public ids read so far: a transcript names the
	// same few authors many times, and parsing one costs a bech32 checksum.
	ids map[string]identity.PublicID
}

// parse reads a transcript. It checks the syntax and the form of every value,
// nothing that needs a signature or the group's state.
func parse(doc []byte) (*parsed, error) {
	if len(doc) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrTruncated)
	}
	p := &parsed{}
	r := &reader{b: doc, where: "the transcript"}
	if !parseTranscript(r, p) {
		return nil, r.err
	}
	return p, nil
}

func parseTranscript(r *reader, p *parsed) bool {
	var v uint64
	if !r.lit(`{"version":`) || !r.uint(&v) {
		return false
	}
	if v != Version {
		return r.fail(fmt.Errorf("%w: the transcript is version %d, this program reads version %d", ErrVersion, v, Version))
	}
	if !r.lit(`,"body":`) {
		return false
	}
	start := r.off
	if !parseBody(r, p) {
		return false
	}
	p.body = r.b[start:r.off]
	r.in("the exporter's signature")
	var s64 []byte
	if !r.lit(`,"signature":`) || !r.raw64(&s64, 64) {
		return false
	}
	var err error
	if p.sig, err = decode64(s64); err != nil || len(p.sig) != 64 {
		return r.malformed("want 64 bytes in base64")
	}
	r.in("the transcript's end")
	if !r.lit("}\n") {
		return false
	}
	if r.off != len(r.b) {
		return r.malformed("data after the end of the transcript")
	}
	return true
}

func parseBody(r *reader, p *parsed) bool {
	r.in("the body")
	if !r.lit(`{"group_id":`) || !r.hexFixed(p.group[:]) ||
		!r.lit(`,"name":`) || !r.str(&p.name, crypto.MaxFrame) ||
		!r.lit(`,"exporter":`) || !r.publicID(&p.exporter) ||
		!r.lit(`,"exported_at":`) || !r.time(&p.exportedAt) {
		return false
	}
	// The range is optional: a whole transcript has none.
	if bytes.HasPrefix(r.b[r.off:], []byte(`,"range":`)) {
		r.in("the range")
		p.span = &Range{}
		if !r.lit(`,"range":`) || !r.lit(`{"from":`) || !r.uint(&p.span.From) ||
			!r.lit(`,"to":`) || !r.uint(&p.span.To) || !r.lit(`}`) {
			return false
		}
		r.in("the body")
	}
	// The lists' slices are allocated once, at their final size: growing
	// them an append at a time copied (and faulted in) each several times.
	n := entriesHint(r.b)
	p.entries, p.chains, p.frames64 = make([]Entry, 0, n), make([][32]byte, 0, n), make([][]byte, 0, n)
	if !r.lit(`,"entries":[`) || !r.list(func(i int) bool { return parseEntry(r, p, i) }) {
		return false
	}
	r.in("the body")
	n = sizeHint(r.b[r.off:], `,"sent_at":`, minMessageJSON)
	p.messages, p.records64, p.sigs64 = make([]message, 0, n), make([][]byte, 0, n), make([][]byte, 0, n)
	if !r.lit(`,"messages":[`) || !r.list(func(i int) bool { return parseMessage(r, p, i) }) {
		return false
	}
	// Attestations are optional, and written only when there are some.
	if bytes.HasPrefix(r.b[r.off:], []byte(`,"attestations":[`)) {
		r.in("the attestations")
		r.off += len(`,"attestations":[`)
		ok := r.list(func(i int) bool {
			r.at("attestations", i)
			var a64 []byte
			if !r.raw64(&a64, maxAttestation) {
				return false
			}
			a, err := decode64(a64)
			if err != nil {
				return r.malformed("not base64")
			}
			if len(p.attestations) == maxAttestations {
				return r.fail(fmt.Errorf("%w: more than %d attestations", ErrTooLarge, maxAttestations))
			}
			p.attestations = append(p.attestations, a)
			return true
		})
		if !ok {
			return false
		}
		if len(p.attestations) == 0 {
			return r.malformed("an empty list of attestations is written as none")
		}
	}
	r.in("the head")
	return r.lit(`,"head":{"index":`) && r.uint(&p.head.index) &&
		r.lit(`,"entries":`) && r.uint(&p.head.entries) &&
		r.lit(`,"hash":`) && r.hexFixed(p.head.hash[:]) &&
		r.lit(`}}`)
}

// sizeHint is about how many items a list in b holds: the occurrences of
// key, a field of its items and of nothing after them (a JSON string cannot
// hold the quotes it contains), at most one per minLen bytes of b (a
// hostile file with many keys and little else gets no large allocation).
// It scans b: for the messages, which come after the entries.
func sizeHint(b []byte, key string, minLen int) int {
	return min(bytes.Count(b, []byte(key)), len(b)/minLen)
}

// entriesHint is about how many entries the transcript b holds, as its head
// (at its end, after everything else) says, at most one per minEntryJSON
// bytes of b; 0 if there is no head to read. It is only a capacity: the
// reader checks the head when it gets there.
func entriesHint(b []byte) int {
	const head, entries = `,"head":{"index":`, `,"entries":`
	i := bytes.LastIndex(b, []byte(head))
	if i < 0 {
		return 0
	}
	rest := b[i+len(head):]
	j := bytes.IndexByte(rest, ',')
	if j < 0 || !bytes.HasPrefix(rest[j:], []byte(entries)) {
		return 0
	}
	n := 0
	for _, c := range rest[j+len(entries):] {
		if c < '0' || c > '9' || n > len(b) {
			break
		}
		n = n*10 + int(c-'0')
	}
	return min(n, len(b)/minEntryJSON)
}

// minEntryJSON and minMessageJSON are fewer bytes than any entry and
// message take in a transcript: an entry has a chain head in hex (64
// bytes), a message an id in hex (32) and an author's public id.
const (
	minEntryJSON   = 100
	minMessageJSON = 150
)

func parseEntry(r *reader, p *parsed, i int) bool {
	r.at("entries", i)
	e := Entry{Kind: KindEntry}
	if !r.lit(`{"index":`) || !r.uint(&e.Index) || !r.lit(`,"kind":`) {
		return false
	}
	start := r.off
	var kind string
	if !r.str(&kind, 16) {
		return false
	}
	switch kind {
	case "entry":
	case "conf":
		e.Kind = KindConf
		var id [8]byte
		if !r.lit(`,"change":{"type":`) || !r.change(&e.Change) ||
			!r.lit(`,"node_id":`) || !r.hexFixed(id[:]) || !r.lit(`}`) {
			return false
		}
		e.NodeID = binary.BigEndian.Uint64(id[:])
	default:
		r.off = start
		return r.malformed("unknown entry kind %q", kind)
	}
	var chain [32]byte
	var f64 []byte
	if !r.lit(`,"chain":`) || !r.hexFixed(chain[:]) ||
		!r.lit(`,"frame":`) || !r.raw64(&f64, crypto.MaxFrame) ||
		!r.lit(`}`) {
		return false
	}
	p.entries = append(p.entries, e)
	p.chains = append(p.chains, chain)
	p.frames64 = append(p.frames64, f64)
	return true
}

func parseMessage(r *reader, p *parsed, i int) bool {
	r.at("messages", i)
	var m message
	var rec64, sig64 []byte
	if !r.lit(`{"index":`) || !r.uint(&m.index) ||
		!r.lit(`,"id":`) || !r.hexFixed(m.id[:]) ||
		!r.lit(`,"author":`) || !r.publicID(&m.author) ||
		!r.lit(`,"text":`) || !r.str(&m.text, crypto.MaxBody) ||
		!r.lit(`,"sent_at":`) || !r.time(&m.sentAt) ||
		!r.lit(`,"record":`) || !r.raw64(&rec64, crypto.MaxRecord) ||
		!r.lit(`,"signature":`) || !r.raw64(&sig64, 64) {
		return false
	}
	// The message key is optional: transcripts before it have none.
	if bytes.HasPrefix(r.b[r.off:], []byte(`,"key":`)) {
		r.off += len(`,"key":`)
		var k64 []byte
		if !r.raw64(&k64, 32) {
			return false
		}
		k, err := decode64(k64)
		if err != nil || len(k) != 32 {
			return r.malformed("the message key is not 32 bytes of base64")
		}
		m.key, m.hasKey = [32]byte(k), true
	}
	if !r.lit(`}`) {
		return false
	}
	p.messages = append(p.messages, m)
	p.records64 = append(p.records64, rec64)
	p.sigs64 = append(p.sigs64, sig64)
	return true
}

// in says that what follows is read in the part of the transcript named by
// where.
func (r *reader) in(where string) { r.where, r.item = where, false }

// at says that what follows is read in item i of the list named by list.
func (r *reader) at(list string, i int) { r.where, r.item, r.i = list, true, i }

// place names what is being read, for an error.
func (r *reader) place() string {
	if !r.item {
		return r.where
	}
	return r.where + "[" + strconv.Itoa(r.i) + "]"
}

// fail records err as the reason the read stopped, and returns false.
func (r *reader) fail(err error) bool {
	r.err = err
	return false
}

func (r *reader) truncated() bool {
	return r.fail(fmt.Errorf("%w: the file ends at byte %d, in %s", ErrTruncated, len(r.b), r.place()))
}

func (r *reader) malformed(format string, args ...any) bool {
	return r.fail(fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, r.place(), r.off, fmt.Sprintf(format, args...)))
}

// lit consumes the literal s: punctuation and field names.
func (r *reader) lit(s string) bool {
	rest := r.b[r.off:]
	if len(rest) >= len(s) && string(rest[:len(s)]) == s {
		r.off += len(s)
		return true
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
func (r *reader) unexpected(want string) bool {
	switch c := r.b[r.off]; c {
	case ' ', '\t', '\n', '\r':
		return r.malformed("unexpected white space: the file was reformatted, and only the exact file as exported can be verified")
	default:
		return r.malformed("found %q, want %s", c, want)
	}
}

// peek reports whether the next byte is c.
func (r *reader) peek(c byte) bool { return r.off < len(r.b) && r.b[r.off] == c }

// uint reads an unsigned decimal integer without leading zeros into v.
func (r *reader) uint(v *uint64) bool {
	start := r.off
	for r.off < len(r.b) && r.b[r.off] >= '0' && r.b[r.off] <= '9' {
		r.off++
	}
	if r.off == len(r.b) {
		return r.truncated()
	}
	digits := r.b[start:r.off]
	switch {
	case len(digits) == 0:
		return r.unexpected("a number")
	case len(digits) > 1 && digits[0] == '0':
		r.off = start
		return r.malformed("number with a leading zero")
	}
	x, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		r.off = start
		return r.malformed("number out of range")
	}
	*v = x
	return true
}

// str reads a string written by appendString, of at most max bytes, into s.
func (r *reader) str(s *string, max int) bool {
	if !r.lit(`"`) {
		return false
	}
	start := r.off
	var out []byte // only for strings with escapes
	for {
		if r.off == len(r.b) {
			return r.truncated()
		}
		if r.off-start > 6*max+6 {
			return r.fail(fmt.Errorf("%w: %s at byte %d: text longer than %d bytes", ErrTooLarge, r.place(), start, max))
		}
		c := r.b[r.off]
		switch {
		case c == '"':
			var v string
			if out == nil {
				v = string(r.b[start:r.off])
			} else {
				v = string(out)
			}
			if !utf8.ValidString(v) {
				r.off = start
				return r.malformed("text is not UTF-8")
			}
			if len(v) > max {
				return r.fail(fmt.Errorf("%w: %s at byte %d: text of %d bytes, limit %d", ErrTooLarge, r.place(), start, len(v), max))
			}
			r.off++
			*s = v
			return true
		case c < 0x20:
			return r.malformed("unescaped control character in text")
		case c == '\\':
			if out == nil {
				out = append([]byte(nil), r.b[start:r.off]...)
			}
			if r.off+1 >= len(r.b) {
				return r.truncated()
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
					return r.truncated()
				}
				x := r.b[r.off+2 : r.off+6]
				v, err := strconv.ParseUint(string(x), 16, 8)
				// Only control characters other than \n, \r and \t are
				// written this way, in lower case.
				if err != nil || x[0] != '0' || x[1] != '0' || v >= 0x20 || v == '\n' || v == '\r' || v == '\t' ||
					string(x) != fmt.Sprintf("%04x", v) {
					return r.malformed("escape \\u%s is not in canonical form", x)
				}
				out = append(out, byte(v))
				r.off += 4
			default:
				return r.malformed("escape \\%c is not in canonical form", e)
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

// raw64 reads a base64 string into s, leaving it undecoded; decode64
// decodes it. max is the largest decoded length allowed.
func (r *reader) raw64(s *[]byte, max int) bool {
	if !r.lit(`"`) {
		return false
	}
	end := bytes.IndexByte(r.b[r.off:], '"')
	if end < 0 {
		return r.truncated()
	}
	if end > base64.StdEncoding.EncodedLen(max) {
		return r.fail(fmt.Errorf("%w: %s at byte %d: more than %d bytes", ErrTooLarge, r.place(), r.off, max))
	}
	*s = r.b[r.off : r.off+end]
	r.off += end + 1
	return true
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

// hexFixed reads a string of exactly len(dst) bytes in lower-case hex into
// dst.
func (r *reader) hexFixed(dst []byte) bool {
	if !r.lit(`"`) {
		return false
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

// publicID reads a public id in its one text form into p.
func (r *reader) publicID(p *identity.PublicID) bool {
	start := r.off
	var s string
	if !r.str(&s, 256) {
		return false
	}
	if id, ok := r.ids[s]; ok {
		*p = id
		return true
	}
	id, err := identity.ParsePublicID(s)
	if err == nil && id.String() == s {
		if r.ids == nil {
			r.ids = map[string]identity.PublicID{}
		}
		r.ids[s] = id
		*p = id
		return true
	}
	r.off = start
	if err == nil {
		return r.malformed("public id not in canonical form")
	}
	return r.malformed("%v", err)
}

// time reads a time written by formatTime into t.
func (r *reader) time(t *time.Time) bool {
	start := r.off
	var s string
	if !r.str(&s, 64) {
		return false
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || formatTime(v) != s {
		r.off = start
		return r.malformed("want an RFC 3339 time in UTC, with trailing zeros of the fraction left out")
	}
	*t = v
	return true
}

// change reads the name of a raft change (see changeNames) into c.
func (r *reader) change(c *state.ConfKind) bool {
	start := r.off
	var name string
	if !r.str(&name, 16) {
		return false
	}
	k, ok := changeByName(name)
	if !ok {
		r.off = start
		return r.malformed("unknown change type %q", name)
	}
	*c = k
	return true
}

// list reads the items of a JSON array whose "[" was read.
func (r *reader) list(item func(i int) bool) bool {
	if r.peek(']') {
		r.off++
		return true
	}
	for i := 0; ; i++ {
		if !item(i) {
			return false
		}
		if r.off == len(r.b) {
			return r.truncated()
		}
		switch r.b[r.off] {
		case ',':
			r.off++
		case ']':
			r.off++
			return true
		default:
			return r.unexpected(`"," or "]"`)
		}
	}
}
