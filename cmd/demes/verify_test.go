package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/transcript/transcripttest"
)

// writeTranscript writes a transcript of a crafted group of two, exported by
// alice, and returns its path and the members' public ids.
func writeTranscript(t *testing.T) (string, []byte, string, string) {
	t.Helper()
	alice, bob := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2)
	g := transcripttest.New(t, transcripttest.GroupID(5), "book club", alice, "alice")
	g.Add(alice, bob, "bob")
	g.Chat(alice, "hello bob")
	g.Chat(bob, "hello alice")
	g.Checkpoint(bob)
	doc := g.Build(alice, bob)
	path := filepath.Join(t.TempDir(), "transcript.json")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, doc, alice.Public().String(), bob.Public().String()
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	path, doc, alice, bob := writeTranscript(t)

	r := runDemes(t, nil, "verify", path, "--trust", alice, "--trust", bob)
	wantExit(t, r, 0)
	for _, want := range []string{`transcript of "book club"`, "exported by alice (d341 d769 1e1e b07d)", "2 accepted, 2 decrypted",
		"bob    70e4 647c 096f 1192  1 message", "1 checkpoint", "trusted, and attested the end: alice", "verified:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}

	// Flags before the file, and --json.
	r = runDemes(t, nil, "verify", "--json", "--trust", bob, path)
	wantExit(t, r, 0)
	var out struct {
		OK       bool   `json:"ok"`
		Name     string `json:"name"`
		Messages int    `json:"messages"`
		Entries  int    `json:"entries"`
		Authors  []struct {
			Name  string `json:"name"`
			Chats int    `json:"chats"`
		} `json:"authors"`
		Checkpoints []struct {
			PublicID  string `json:"public_id"`
			LastIndex uint64 `json:"last_index"`
		} `json:"checkpoints"`
		Trusted []string `json:"trusted"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if !out.OK || out.Name != "book club" || out.Messages != 2 || out.Entries != 6 || len(out.Authors) != 2 ||
		len(out.Checkpoints) != 1 || out.Checkpoints[0].PublicID != bob || len(out.Trusted) != 1 {
		t.Errorf("--json: %+v", out)
	}

	// From stdin.
	cmd := exec.Command(demesBin, "verify", "-")
	cmd.Stdin = bytes.NewReader(doc)
	if outb, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(outb), "verified:") {
		t.Errorf("verify -: %v\n%s", err, outb)
	}
}

func TestVerifyCommandFailures(t *testing.T) {
	t.Parallel()
	path, doc, alice, _ := writeTranscript(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stranger := transcripttest.Identity(t, 9).Public().String()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"edited text", []string{write("edited.json", bytes.Replace(doc, []byte("hello bob"), []byte("hello rob"), 1))}, 1,
			[]string{"demes: error: ", "edited.json: edited text: the message at index 4"}},
		{"truncated", []string{write("cut.json", doc[:len(doc)/3])}, 1,
			[]string{"truncated file", "demes: hint: verify the file exactly as"}},
		{"reformatted", []string{write("spaced.json", bytes.Replace(doc, []byte(`"version":1`), []byte(`"version": 1`), 1))}, 1,
			[]string{"malformed transcript", "reformatted"}},
		{"untrusted", []string{path, "--trust", alice, "--trust", stranger}, 1,
			[]string{"untrusted: " + stranger}},
		{"missing file", []string{filepath.Join(dir, "nope.json")}, 1, []string{"no such file"}},
		{"no file", nil, 2, []string{"missing the transcript FILE", "usage: demes verify FILE"}},
		{"two files", []string{path, path}, 2, []string{"unexpected argument"}},
		{"bad trust", []string{path, "--trust", "demes1nope"}, 2, []string{`--trust: "demes1nope": `}},
	} {
		r := runDemes(t, nil, append([]string{"verify"}, tc.args...)...)
		if r.code != tc.code {
			t.Errorf("%s: want exit %d, got %v", tc.name, tc.code, r)
			continue
		}
		wantStderr(t, r, tc.want...)
		if r.stdout != "" {
			t.Errorf("%s: printed on stdout:\n%s", tc.name, r.stdout)
		}
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines > 1 {
			t.Errorf("%s: more than an error and a hint on stderr:\n%s", tc.name, r.stderr)
		}
	}
}

// TestVerifySharedNames: in a transcript where an impostor joined as
// "Alice " beside alice, and a member as "\u202eecila" (drawn "alice"),
// verify flags each of them as the node flags name_shared, from the names
// the transcript holds alone; bob, whose name is his own, is not.
func TestVerifySharedNames(t *testing.T) {
	t.Parallel()
	alice, bob := transcripttest.Identity(t, 1), transcripttest.Identity(t, 2)
	impostor, mirrored := transcripttest.Identity(t, 3), transcripttest.Identity(t, 4)
	g := transcripttest.New(t, transcripttest.GroupID(6), "book club", alice, "alice")
	g.Add(alice, bob, "bob")
	g.Add(alice, impostor, "Alice ")
	g.Add(alice, mirrored, "\u202eecila")
	g.Chat(alice, "hello bob")
	g.Chat(impostor, "hello bob, alice here")
	g.Checkpoint(impostor)
	path := filepath.Join(t.TempDir(), "transcript.json")
	if err := os.WriteFile(path, g.Build(alice), 0o644); err != nil {
		t.Fatal(err)
	}
	shared := map[string]bool{alice.Public().String(): true, impostor.Public().String(): true, mirrored.Public().String(): true}

	r := runDemes(t, nil, "verify", "--json", path)
	wantExit(t, r, 0)
	type who struct {
		PublicID   string `json:"public_id"`
		NameShared bool   `json:"name_shared"`
	}
	var out struct {
		Exporter    who   `json:"exporter"`
		Authors     []who `json:"authors"`
		Members     []who `json:"members"`
		Checkpoints []who `json:"checkpoints"`
		Attested    []who `json:"attested"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	all := append(append(append(append([]who{out.Exporter}, out.Authors...), out.Members...), out.Checkpoints...), out.Attested...)
	if len(all) != 1+2+4+1+1 {
		t.Fatalf("--json lists %d members, authors and checkpoints:\n%s", len(all), r.stdout)
	}
	for _, w := range all {
		if w.NameShared != shared[w.PublicID] {
			t.Errorf("%s: name_shared %v, want %v", w.PublicID, w.NameShared, shared[w.PublicID])
		}
	}

	r = runDemes(t, nil, "verify", path)
	wantExit(t, r, 0)
	const note = "name shared with another member, or can pass for another"
	for _, line := range strings.Split(r.stdout, "\n") {
		for _, id := range []*identity.Identity{alice, bob, impostor, mirrored} {
			fp := id.Public().Fingerprint()
			if !strings.HasPrefix(line, "  ") || !strings.Contains(line, fp) {
				continue
			}
			if got, want := strings.Contains(line, note), shared[id.Public().String()]; got != want {
				t.Errorf("the line %q notes a shared name: %v, want %v", line, got, want)
			}
		}
	}
}
