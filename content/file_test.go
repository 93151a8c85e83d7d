package content

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/demes/demes/state"
)

func testRef() *FileRef {
	return &FileRef{Name: "cat.png", Type: "image/png", Size: 1000, Blob: [32]byte{1, 2, 3}, BlobSize: 1200,
		Key: "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"}
}

// TestFileRoundTrip: a file message encodes and parses back to the same
// reference, and is shown as an attachment whose text is its name.
func TestFileRoundTrip(t *testing.T) {
	ref := testRef()
	body, err := Encode(Content{Kind: File, File: ref})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != File || *c.File != *ref {
		t.Fatalf("parsed %+v, want %+v", c.File, ref)
	}
	var b Board
	if err := b.Apply([16]byte{9}, "a", c, nil); err != nil || b.IsChange([16]byte{9}) {
		t.Fatalf("a file is listed like a text, not a change: %v", err)
	}
}

// TestFileRefused: a file message with a missing, oversized or unsafe
// field is refused, when sent and when received; so is a non-canonical
// encoding.
func TestFileRefused(t *testing.T) {
	for name, change := range map[string]func(*FileRef){
		"empty name":     func(f *FileRef) { f.Name = "" },
		"directory":      func(f *FileRef) { f.Name = "../etc/passwd" },
		"backslash":      func(f *FileRef) { f.Name = `a\b` },
		"control":        func(f *FileRef) { f.Name = "a\nb" },
		"long name":      func(f *FileRef) { f.Name = strings.Repeat("a", MaxFileName+1) },
		"no type":        func(f *FileRef) { f.Type = "" },
		"bad type":       func(f *FileRef) { f.Type = "text/html; x=<y>" },
		"no blob":        func(f *FileRef) { f.Blob = [32]byte{} },
		"small blob":     func(f *FileRef) { f.BlobSize = f.Size },
		"huge blob":      func(f *FileRef) { f.BlobSize = MaxBlobSize(f.Size) + 1 },
		"negative":       func(f *FileRef) { f.Size = -1 },
		"no key":         func(f *FileRef) { f.Key = "" },
		"not an age key": func(f *FileRef) { f.Key = "hello" },
		"long key":       func(f *FileRef) { f.Key += strings.Repeat("Q", MaxFileKey) },
	} {
		f := testRef()
		change(f)
		if _, err := Encode(Content{Kind: File, File: f}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: encoded (%v)", name, err)
		}
		// The same on the wire, from a client that does not check.
		b, err := state.Encode(&fileWire{Version: Version, Kind: uint64(File), Name: f.Name, Type: f.Type, Size: uint64(f.Size), Blob: f.Blob[:], BlobSize: uint64(f.BlobSize), Key: f.Key})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(append([]byte{Marker}, base64.RawURLEncoding.EncodeToString(b)...)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
	if _, err := Encode(Content{Kind: File}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a file message without a file encoded: %v", err)
	}
	if _, err := Encode(Content{Kind: Text, Text: "x", File: testRef()}); err == nil {
		t.Error("a text with a file encoded")
	}
	// A short blob id and a missing field.
	f := testRef()
	for name, w := range map[string]any{
		"short blob id": &fileWire{Version: Version, Kind: uint64(File), Name: f.Name, Type: f.Type, Size: uint64(f.Size), Blob: f.Blob[:31], BlobSize: uint64(f.BlobSize), Key: f.Key},
		"missing key": &struct {
			_             struct{} `cbor:",toarray"`
			Version, Kind uint64
			Name, Type    string
			Size          uint64
			Blob          []byte
			BlobSize      uint64
		}{Version: Version, Kind: uint64(File), Name: f.Name, Type: f.Type, Size: uint64(f.Size), Blob: f.Blob[:], BlobSize: uint64(f.BlobSize)},
	} {
		b, err := state.Encode(w)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(append([]byte{Marker}, base64.RawURLEncoding.EncodeToString(b)...)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: parsed (%v)", name, err)
		}
	}
}
