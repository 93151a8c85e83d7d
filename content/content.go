// Package content is the format of a chat message's body: what its author
// wrote, inside the sealed record (crypto.Message.Body).
//
// A body is either plain UTF-8 text, as every DeMeS version has sent, or
// structured content: the byte 0x00 (which no text DeMeS sends starts with,
// see [CheckText]), then the unpadded base64url form of a canonical CBOR
// array [version, kind, text, ref, emoji]. The base64 keeps the body valid
// UTF-8, which the record format requires, so that a node or verifier that
// predates structured content still accepts the record (it shows the raw
// body). Structured content says one of:
//
//   - text: a message, replying to the message ref when ref is set;
//   - reaction: the author's reaction emoji to ref (an empty emoji takes
//     the author's reaction back); one reaction per author and message;
//   - edit: new text for ref, which only ref's author may give;
//   - delete: ref is deleted, which only ref's author may do.
//   - file: an attachment: its name, media type, size, and the id, size
//     and key of its encrypted blob (see [FileRef]); listed like a text.
//
// Reactions, edits and deletes are messages of the log like any other, but they are not
// listed: they change their target (see [Board]).
package content

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

// Kind is what structured content says.
type Kind uint8

// The kinds of content.
const (
	Text     Kind = 1
	Reaction Kind = 2
	Edit     Kind = 3
	Delete   Kind = 4
	// File is an attachment (see [File]); it is listed like a text.
	File Kind = 5
)

// String returns the kind's name, as the API shows it ("" for text).
func (k Kind) String() string {
	switch k {
	case Text:
		return ""
	case Reaction:
		return "reaction"
	case Edit:
		return "edit"
	case Delete:
		return "delete"
	case File:
		return "file"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// Version is the structured content version this package writes and reads.
const Version = 1

// Marker is the first byte of a structured body.
const Marker = 0x00

// Limits of content.
const (
	// MaxEmoji is the longest reaction, in bytes.
	MaxEmoji = 32
	// MaxText is the longest text of structured content, in bytes: what
	// fits in a body of crypto.MaxBody once encoded (base64 takes 4 bytes
	// for 3, the CBOR array and a reply's ref a few dozen).
	MaxText = (crypto.MaxBody-1)/4*3 - 64
)

// Errors of Parse and Check.
var (
	// ErrMalformed: the body starts with the marker but is not valid
	// structured content of a known version.
	ErrMalformed = errors.New("malformed message content")
	// ErrUnsupported: structured content of a newer version or an
	// unknown kind; a newer DeMeS wrote it.
	ErrUnsupported = errors.New("message content of a newer DeMeS version")
	// ErrInvalid: content that breaks a rule (an empty text, a missing
	// target, a long emoji).
	ErrInvalid = errors.New("invalid message content")
)

// Content is a message body's meaning.
type Content struct {
	Kind Kind
	// Text is the message's text (Text), or the new text (Edit).
	Text string
	// Ref is the message replied to (Text, optional), reacted to, edited
	// or deleted.
	Ref *[16]byte
	// Emoji is the reaction (Reaction); empty takes it back.
	Emoji string
	// File is the attachment (File).
	File *FileRef
}

type wire struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Kind    uint64
	Text    string
	Ref     []byte // empty or 16 bytes
	Emoji   string
}

// Plain reports whether c is a text without a reply: it is sent as plain
// text, as before structured content existed.
func (c Content) Plain() bool { return c.Kind == Text && c.Ref == nil }

// Check reports whether c follows the rules of its kind.
func (c Content) Check() error {
	if c.File != nil && c.Kind != File {
		return fmt.Errorf("%w: a file on a %s", ErrInvalid, c.Kind)
	}
	switch c.Kind {
	case Text, Edit:
		if c.Text == "" {
			return fmt.Errorf("%w: empty text", ErrInvalid)
		}
		if c.Kind == Edit && c.Ref == nil {
			return fmt.Errorf("%w: an edit names the message it edits", ErrInvalid)
		}
		if c.Emoji != "" {
			return fmt.Errorf("%w: an emoji on a %s", ErrInvalid, c.Kind)
		}
		if !utf8.ValidString(c.Text) {
			return fmt.Errorf("%w: text is not UTF-8", ErrInvalid)
		}
		limit := MaxText
		if c.Plain() {
			limit = crypto.MaxBody
		}
		if len(c.Text) > limit {
			return fmt.Errorf("%w: text of %d bytes, the limit is %d", ErrInvalid, len(c.Text), limit)
		}
	case Reaction:
		if c.Ref == nil {
			return fmt.Errorf("%w: a reaction names the message it reacts to", ErrInvalid)
		}
		if err := CheckEmoji(c.Emoji); err != nil {
			return err
		}
		if c.Text != "" {
			return fmt.Errorf("%w: text on a reaction", ErrInvalid)
		}
	case Delete:
		if c.Ref == nil {
			return fmt.Errorf("%w: a delete names the message it deletes", ErrInvalid)
		}
		if c.Text != "" || c.Emoji != "" {
			return fmt.Errorf("%w: text or emoji on a delete", ErrInvalid)
		}
	case File:
		if c.Text != "" || c.Emoji != "" || c.Ref != nil {
			return fmt.Errorf("%w: text, emoji or reference on a file", ErrInvalid)
		}
		if c.File == nil {
			return fmt.Errorf("%w: a file message without its file", ErrInvalid)
		}
		if err := c.File.Check(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: kind %d", ErrUnsupported, c.Kind)
	}
	return nil
}

// CheckEmoji reports whether e is a reaction: empty (none), or at most
// MaxEmoji bytes of UTF-8 without spaces or control characters.
func CheckEmoji(e string) error {
	if len(e) > MaxEmoji {
		return fmt.Errorf("%w: a reaction of %d bytes, the limit is %d", ErrInvalid, len(e), MaxEmoji)
	}
	if !utf8.ValidString(e) {
		return fmt.Errorf("%w: reaction is not UTF-8", ErrInvalid)
	}
	if strings.IndexFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("%w: a reaction holds spaces or control characters", ErrInvalid)
	}
	return nil
}

// CheckText reports whether text may be sent as plain text: it must not
// start with a control character (other than a tab or a line break), so
// that no text can pass for structured content.
func CheckText(text string) error {
	r, _ := utf8.DecodeRuneInString(text)
	if text != "" && unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
		return fmt.Errorf("%w: text starts with the control character %U", ErrInvalid, r)
	}
	return nil
}

// Encode returns c's body: its text when c is Plain, else structured
// content.
func Encode(c Content) ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if c.Plain() {
		if err := CheckText(c.Text); err != nil {
			return nil, err
		}
		return []byte(c.Text), nil
	}
	if c.Kind == File {
		return encodeFile(c.File)
	}
	w := wire{Version: Version, Kind: uint64(c.Kind), Text: c.Text, Emoji: c.Emoji}
	if c.Ref != nil {
		w.Ref = c.Ref[:]
	}
	return wrap(&w, "message content")
}

// wrap encodes w, a wire array, as a structured body: Marker, then the
// unpadded base64url form of its canonical CBOR, at most crypto.MaxBody
// bytes. what names it in errors.
func wrap(w any, what string) ([]byte, error) {
	b, err := state.Encode(w)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	out := make([]byte, 1+base64.RawURLEncoding.EncodedLen(len(b)))
	out[0] = Marker
	base64.RawURLEncoding.Encode(out[1:], b)
	if len(out) > crypto.MaxBody {
		return nil, fmt.Errorf("%w: content of %d bytes encoded, the limit is %d", ErrInvalid, len(out), crypto.MaxBody)
	}
	return out, nil
}

// Parse returns the content of body. A body that does not start with
// Marker is plain text, whatever it holds; one that does is decoded and
// checked, and only its canonical encoding is accepted.
func Parse(body []byte) (Content, error) {
	if len(body) == 0 || body[0] != Marker {
		return Content{Kind: Text, Text: string(body)}, nil
	}
	if len(body) > crypto.MaxBody {
		return Content{}, fmt.Errorf("%w: %d bytes", ErrMalformed, len(body))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(string(body[1:]))
	if err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// A newer version may have another shape: read its version first.
	var head []cbor.RawMessage
	if err := cbor.Unmarshal(b, &head); err != nil || len(head) == 0 {
		return Content{}, fmt.Errorf("%w: not a CBOR array", ErrMalformed)
	}
	var v uint64
	if err := cbor.Unmarshal(head[0], &v); err != nil {
		return Content{}, fmt.Errorf("%w: version: %v", ErrMalformed, err)
	}
	if v != Version {
		return Content{}, fmt.Errorf("%w: version %d", ErrUnsupported, v)
	}
	if len(head) > 1 {
		var k uint64
		if err := cbor.Unmarshal(head[1], &k); err == nil && k == uint64(File) {
			return parseFile(b)
		}
	}
	var w wire
	if err := state.Decode(b, &w); err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.Kind < uint64(Text) || w.Kind > uint64(Delete) {
		return Content{}, fmt.Errorf("%w: kind %d", ErrUnsupported, w.Kind)
	}
	c := Content{Kind: Kind(w.Kind), Text: w.Text, Emoji: w.Emoji}
	switch len(w.Ref) {
	case 0:
	case 16:
		c.Ref = (*[16]byte)(w.Ref)
	default:
		return Content{}, fmt.Errorf("%w: a reference of %d bytes", ErrMalformed, len(w.Ref))
	}
	if err := c.Check(); err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}
