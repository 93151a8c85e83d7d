package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsWithoutColourOffTerminal: console logs written to a file (demes
// serve 2>serve.log) or a pipe carry no ANSI escape codes.
func TestLogsWithoutColourOffTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []io.Writer{f, &buf} {
		l := &logFlags{level: "info", format: "console"}
		logger, err := l.logger(w)
		if err != nil {
			t.Fatal(err)
		}
		logger.Warn().Str("peer", "bob").Msg("peer unreachable")
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"file": string(got), "buffer": buf.String()} {
		if !strings.Contains(out, "peer unreachable") || !strings.Contains(out, "peer=bob") {
			t.Errorf("%s: the log line is missing: %q", name, out)
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("%s: the log has ANSI colour codes: %q", name, out)
		}
	}
}
