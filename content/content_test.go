package content

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/state"
)

func ref(b byte) *[16]byte {
	var r [16]byte
	r[0] = b
	return &r
}

func TestEncodeParse(t *testing.T) {
	for name, c := range map[string]Content{
		"plain":        {Kind: Text, Text: "hello"},
		"reply":        {Kind: Text, Text: "yes", Ref: ref(1)},
		"reaction":     {Kind: Reaction, Ref: ref(2), Emoji: "👍"},
		"unreact":      {Kind: Reaction, Ref: ref(2)},
		"edit":         {Kind: Edit, Ref: ref(3), Text: "fixed"},
		"delete":       {Kind: Delete, Ref: ref(4)},
		"long reply":   {Kind: Text, Text: strings.Repeat("é", MaxText/2), Ref: ref(5)},
		"plain at max": {Kind: Text, Text: strings.Repeat("a", crypto.MaxBody)},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > crypto.MaxBody || !utf8.Valid(b) {
				t.Fatalf("body of %d bytes, UTF-8 %v: the record format refuses it", len(b), utf8.Valid(b))
			}
			if c.Plain() != (b[0] != Marker) {
				t.Fatalf("plain %v but body starts with %#x", c.Plain(), b[0])
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != c.Kind || got.Text != c.Text || got.Emoji != c.Emoji || (got.Ref == nil) != (c.Ref == nil) || (c.Ref != nil && *got.Ref != *c.Ref) {
				t.Fatalf("parsed %+v, want %+v", got, c)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, c := range map[string]Content{
		"empty text":        {Kind: Text},
		"nul first":         {Kind: Text, Text: "\x00hi"},
		"escape first":      {Kind: Text, Text: "\x1b[31mred"},
		"edit without ref":  {Kind: Edit, Text: "x"},
		"empty edit":        {Kind: Edit, Ref: ref(1)},
		"reaction no ref":   {Kind: Reaction, Emoji: "👍"},
		"long emoji":        {Kind: Reaction, Ref: ref(1), Emoji: strings.Repeat("👍", 9)},
		"emoji with space":  {Kind: Reaction, Ref: ref(1), Emoji: "a b"},
		"text on reaction":  {Kind: Reaction, Ref: ref(1), Emoji: "x", Text: "hi"},
		"text on delete":    {Kind: Delete, Ref: ref(1), Text: "x"},
		"unknown kind":      {Kind: 9, Text: "x"},
		"reply over limit":  {Kind: Text, Ref: ref(1), Text: strings.Repeat("a", MaxText+1)},
		"plain over limit":  {Kind: Text, Text: strings.Repeat("a", crypto.MaxBody+1)},
		"emoji on text":     {Kind: Text, Text: "x", Emoji: "👍"},
		"invalid UTF-8 too": {Kind: Text, Text: "\xff", Ref: ref(1)},
	} {
		if b, err := Encode(c); err == nil {
			t.Errorf("%s: encoded as %q", name, b)
		}
	}
	// Tabs and line breaks may start a text.
	if _, err := Encode(Content{Kind: Text, Text: "\tindented"}); err != nil {
		t.Error(err)
	}
}

func structured(t *testing.T, w any) []byte {
	t.Helper()
	b, err := state.Encode(w)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{Marker}, base64.RawURLEncoding.EncodeToString(b)...)
}

func TestParse(t *testing.T) {
	if c, err := Parse([]byte("just text")); err != nil || c.Kind != Text || c.Text != "just text" {
		t.Fatalf("plain text parsed as %+v, %v", c, err)
	}
	type newer struct {
		_                 struct{} `cbor:",toarray"`
		Version, Kind     uint64
		Text              string
		Ref               []byte
		Emoji, Attachment string
	}
	for name, tc := range map[string]struct {
		body []byte
		want error
	}{
		"newer version":    {structured(t, &newer{Version: 2, Kind: 1, Text: "x"}), ErrUnsupported},
		"unknown kind":     {structured(t, &wire{Version: 1, Kind: 7, Text: "x"}), ErrUnsupported},
		"short ref":        {structured(t, &wire{Version: 1, Kind: 4, Ref: []byte{1}}), ErrMalformed},
		"breaks the rules": {structured(t, &wire{Version: 1, Kind: 3, Ref: ref(1)[:]}), ErrMalformed},
		"not base64":       {[]byte("\x00!!"), ErrMalformed},
		"padded base64":    {append([]byte{0}, base64.URLEncoding.EncodeToString([]byte{0x80})...), ErrMalformed},
		"not an array":     {append([]byte{0}, base64.RawURLEncoding.EncodeToString([]byte{0x01})...), ErrMalformed},
		"marker only":      {[]byte{0}, ErrMalformed},
	} {
		if c, err := Parse(tc.body); !errors.Is(err, tc.want) {
			t.Errorf("%s: %+v, %v; want %v", name, c, err, tc.want)
		}
	}
	// Not canonical: the same content with a longer integer encoding.
	good := structured(t, &wire{Version: 1, Kind: 4, Ref: ref(1)[:]})
	raw, _ := base64.RawURLEncoding.DecodeString(string(good[1:]))
	long := append([]byte{raw[0], 0x18, 0x01}, raw[2:]...)
	if _, err := Parse(append([]byte{0}, base64.RawURLEncoding.EncodeToString(long)...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-canonical CBOR: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range []Content{{Kind: Text, Text: "hi", Ref: ref(1)}, {Kind: Reaction, Ref: ref(1), Emoji: "🎉"}, {Kind: Delete, Ref: ref(2)}} {
		b, _ := Encode(c)
		f.Add(b)
	}
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := Parse(body)
		if err != nil {
			return
		}
		if len(body) > 0 && body[0] == Marker {
			// What parses encodes back to the same body.
			again, err := Encode(c)
			if err != nil {
				t.Fatalf("parsed %+v does not encode: %v", c, err)
			}
			if !bytes.Equal(again, body) && !c.Plain() {
				t.Fatalf("%q parsed as %+v encodes as %q", body, c, again)
			}
		}
	})
}

func TestBoard(t *testing.T) {
	authors := map[[16]byte]string{*ref(1): "alice", *ref(2): "bob"}
	lookup := func(id [16]byte) (string, bool) { a, ok := authors[id]; return a, ok }
	var b Board
	apply := func(id byte, author string, c Content) error {
		return b.Apply(*ref(id), author, c, lookup)
	}
	if err := apply(1, "alice", Content{Kind: Text, Text: "hi"}); err != nil || b.IsChange(*ref(1)) {
		t.Fatalf("a text is no change: %v", err)
	}
	steps := []struct {
		id     byte
		author string
		c      Content
		want   error
	}{
		{10, "bob", Content{Kind: Reaction, Ref: ref(1), Emoji: "👍"}, nil},
		{11, "carol", Content{Kind: Reaction, Ref: ref(1), Emoji: "👍"}, nil},
		{12, "alice", Content{Kind: Reaction, Ref: ref(1), Emoji: "🎉"}, nil},
		{13, "carol", Content{Kind: Reaction, Ref: ref(1)}, nil},
		{14, "bob", Content{Kind: Edit, Ref: ref(1), Text: "bob was here"}, ErrNotAuthor},
		{15, "bob", Content{Kind: Delete, Ref: ref(1)}, ErrNotAuthor},
		{16, "alice", Content{Kind: Edit, Ref: ref(1), Text: "hello"}, nil},
		{17, "alice", Content{Kind: Reaction, Ref: ref(9), Emoji: "x"}, ErrUnknownTarget},
		{18, "alice", Content{Kind: Edit, Ref: ref(10), Text: "x"}, ErrUnknownTarget},
		{19, "bob", Content{Kind: Delete, Ref: ref(2)}, nil},
		{20, "alice", Content{Kind: Reaction, Ref: ref(2), Emoji: "x"}, ErrDeleted},
		{21, "bob", Content{Kind: Edit, Ref: ref(2), Text: "back"}, ErrDeleted},
	}
	for _, s := range steps {
		if err := apply(s.id, s.author, s.c); !errors.Is(err, s.want) && (err != nil || s.want != nil) {
			t.Fatalf("change %d: %v, want %v", s.id, err, s.want)
		}
		if !b.IsChange(*ref(s.id)) {
			t.Fatalf("change %d is listed", s.id)
		}
	}
	m := api.Message{Text: "hi"}
	b.Decorate(&m, *ref(1), "alice")
	want := []api.Reaction{{Emoji: "🎉", Count: 1, Mine: true}, {Emoji: "👍", Count: 1}}
	if m.Text != "hello" || !m.Edited || m.Deleted || len(m.Reactions) != 2 || m.Reactions[0] != want[0] || m.Reactions[1] != want[1] {
		t.Fatalf("decorated %+v", m)
	}
	d := api.Message{Text: "secret", ReplyTo: "aa"}
	b.Note(*ref(2)).Decorate(&d, "alice")
	if d.Text != "" || d.ReplyTo != "" || !d.Deleted {
		t.Fatalf("deleted message shows %+v", d)
	}
	// Note is a copy.
	n := b.Note(*ref(1))
	n.Reactions[0].Emoji = "x"
	if b.Note(*ref(1)).Reaction(n.Reactions[0].Who) == "x" {
		t.Fatal("Note shares its reactions with the board")
	}
}

// TestDecorateLegacyReactions: a reaction in words, which an earlier DeMeS
// sent and the members' nodes still accept, is marked legacy, so that a
// reader knows it can be taken back but not given again; an emoji is not.
func TestDecorateLegacyReactions(t *testing.T) {
	authors := map[[16]byte]string{*ref(1): "alice"}
	lookup := func(id [16]byte) (string, bool) { a, ok := authors[id]; return a, ok }
	var b Board
	for i, s := range []struct{ author, emoji string }{{"bob", "+1"}, {"carol", "+1"}, {"dave", "👍"}, {"erin", "❤️"}} {
		if err := b.Apply(*ref(byte(10 + i)), s.author, Content{Kind: Reaction, Ref: ref(1), Emoji: s.emoji}, lookup); err != nil {
			t.Fatalf("%s %q: %v", s.author, s.emoji, err)
		}
	}
	m := api.Message{Text: "hi"}
	b.Decorate(&m, *ref(1), "bob")
	want := []api.Reaction{{Emoji: "+1", Count: 2, Mine: true, Legacy: true}, {Emoji: "❤️", Count: 1}, {Emoji: "👍", Count: 1}}
	if !slices.Equal(m.Reactions, want) {
		t.Fatalf("reactions %+v, want %+v", m.Reactions, want)
	}
}
