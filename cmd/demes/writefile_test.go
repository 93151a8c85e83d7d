package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteNewFile: writeNewFileWith writes a new file whole, never over
// one that exists (even one that appears while it writes), and its errors
// name the path given, not its temporary file.
func TestWriteNewFile(t *testing.T) {
	dir := t.TempDir()
	text := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	path := filepath.Join(dir, "t.json")
	if n, err := writeNewFileWith(path, 0o600, text("first")); err != nil || n != 5 {
		t.Fatalf("new file: %d, %v", n, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v, %v", st, err)
	}
	if _, err := writeNewFileWith(path, 0o600, text("second")); !errors.Is(err, fs.ErrExist) || err.Error() != path+" exists already" {
		t.Errorf("over a file: %v", err)
	}
	// A file that appears while the export is written is not replaced.
	late := filepath.Join(dir, "late.json")
	_, err := writeNewFileWith(late, 0o600, func(w io.Writer) error {
		return os.WriteFile(late, []byte("someone else's"), 0o600)
	})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("over a file made meanwhile: %v", err)
	}
	for p, want := range map[string]string{path: "first", late: "someone else's"} {
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s holds %q, want %q", p, b, want)
		}
	}
	missing := filepath.Join(dir, "nodir", "t.json")
	_, err = writeNewFileWith(missing, 0o600, text("x"))
	if err == nil || !strings.Contains(err.Error(), "cannot create "+missing+": ") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("into a missing directory: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}
}
