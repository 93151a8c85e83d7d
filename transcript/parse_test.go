package transcript

import (
	"bytes"
	"encoding/base64"
	"os"
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
