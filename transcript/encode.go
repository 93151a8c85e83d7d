package transcript

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/demes/demes/identity"
)

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
	b = append(b, '"')
	if r := d.span; r != nil {
		b = append(b, `,"range":{"from":`...)
		b = strconv.AppendUint(b, r.From, 10)
		b = append(b, `,"to":`...)
		b = strconv.AppendUint(b, r.To, 10)
		b = append(b, '}')
	}
	b = append(b, `,"entries":[`...)
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
		if m.hasKey {
			b = append(b, `","key":"`...)
			b = base64.StdEncoding.AppendEncode(b, m.key[:])
		}
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	if len(d.attestations) > 0 {
		b = append(b, `,"attestations":[`...)
		for i, a := range d.attestations {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, a)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = append(b, `,"head":{"index":`...)
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
