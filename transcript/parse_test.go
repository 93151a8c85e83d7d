package transcript

import (
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// reencode writes a parsed transcript again, with its own signature, or
// returns nil if a base64 value in it does not decode.
func reencode(t *testing.T, p *parsed) []byte {
	d := p.document
	d.entries = append([]Entry(nil), p.entries...)
	for i := range d.entries {
		f, err := decode64(p.frames64[i])
		if err != nil {
			return nil
		}
		d.entries[i].Frame = f
	}
	d.messages = append([]message(nil), p.messages...)
	for i := range d.messages {
		var err error
		if d.messages[i].record, err = decode64(p.records64[i]); err != nil {
			return nil
		}
		if d.messages[i].sig, err = decode64(p.sigs64[i]); err != nil {
			return nil
		}
	}
	b := []byte(`{"version":1,"body":`)
	b, err := d.appendBody(b)
	if err != nil {
		t.Fatalf("parsed, but does not encode: %v", err)
	}
	b = append(b, `,"signature":"`...)
	b = base64.StdEncoding.AppendEncode(b, p.sig)
	return append(b, "\"}\n"...)
}

// FuzzParse: whatever the reader accepts is in the one canonical form, so it
// encodes back to exactly the same bytes; and the reader never panics.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/small.json", "testdata/transcript.json", "testdata/range.json"} {
		doc, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc)
	}
	f.Add([]byte(`{"version":1,"body":{"group_id":"00000000000000000000000000000000","name":"a\n\u0001\"","exporter":"","exported_at":"","entries":[],"messages":[],"head":{"index":0,"entries":0,"hash":""}},"signature":""}` + "\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := parse(doc)
		if err != nil {
			return
		}
		again := reencode(t, p)
		if again != nil && !bytes.Equal(again, doc) {
			t.Fatalf("parsed and encoded again, differs:\n%q\n%q", doc, again)
		}
		if !bytes.Equal(p.body, doc[len(`{"version":1,"body":`):len(`{"version":1,"body":`)+len(p.body)]) {
			t.Fatal("the body is not the bytes after the version")
		}
	})
}

// TestStrings: the string encoding round-trips every character, and the
// reader refuses every other escape.
func TestStrings(t *testing.T) {
	in := "plain \"q\" \\ \n\r\t \x00\x01\x1f \x7f é ☃ \u2028 😀"
	b, err := appendString(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	want := `"plain \"q\" \\ \n\r\t \u0000\u0001\u001f ` + "\x7f é ☃ \u2028 😀\""
	if string(b) != want {
		t.Fatalf("encoded %s, want %s", b, want)
	}
	r := &reader{b: append(b, ','), where: "test"}
	var out string
	if !r.str(&out, 1000) || out != in || r.off != len(b) {
		t.Fatalf("read %q, %v, at %d", out, r.err, r.off)
	}
	for _, bad := range []string{`"\/"`, `"\u0041"`, `"\u000A"`, `"\u001F"`, `"\b"`, "\"\x01\"", "\"\xff\"", `"\x"`} {
		r := &reader{b: []byte(bad + ","), where: "test"}
		var s string
		if r.str(&s, 1000) {
			t.Errorf("%s read as %q", bad, s)
		}
	}
	if _, err := appendString(nil, "\xff"); err == nil {
		t.Error("encoded invalid UTF-8")
	}
}

// TestEntriesHint checks the capacity the reader takes from a transcript's
// head: the count the head gives, never more than the file could hold, and
// none without a head.
func TestEntriesHint(t *testing.T) {
	tail := `,"head":{"index":70,"entries":3,"hash":"00"}},"signature":"AA=="}` + "\n"
	pad := strings.Repeat(" ", 10*minEntryJSON)
	for _, c := range []struct {
		doc  string
		want int
	}{
		{pad + tail, 3},
		{tail, 0}, // too short for 3 entries
		{pad + `,"head":{"index":70,"entries":999999999999,"hash":"00"}}`, len(pad+`,"head":{"index":70,"entries":999999999999,"hash":"00"}}`) / minEntryJSON},
		{pad + `,"head":{"index":70}`, 0},
		{pad, 0},
		{pad + `"text":"\",\"head\":{\"index\":1,\"entries\":5"` + tail, 3},
	} {
		if got := entriesHint([]byte(c.doc)); got != c.want {
			t.Errorf("%q: hint %d, want %d", c.doc[len(pad)/2:], got, c.want)
		}
	}
}
