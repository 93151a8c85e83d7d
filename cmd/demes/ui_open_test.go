//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/internal/testutil"
)

// fakeOpener puts an xdg-open that writes its arguments, one a line, to
// the file it returns, and returns the PATH entry that finds it.
func fakeOpener(t *testing.T) (pathEnv, args string) {
	t.Helper()
	bin := t.TempDir()
	args = filepath.Join(t.TempDir(), "args")
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + args + ".tmp && mv " + args + ".tmp " + args + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), args
}

// openerArgs waits for the fake xdg-open to have run and returns its
// arguments.
func openerArgs(t *testing.T, path string) string {
	t.Helper()
	var args []byte
	testutil.Eventually(t, 10*time.Second, "xdg-open to run", func() bool {
		var err error
		args, err = os.ReadFile(path)
		return err == nil
	})
	return string(args)
}

// TestUIOpenKeepsTokenOffCommandLines: demes ui --open hands the address
// to xdg-open, which hands it to the browser. A process's arguments are
// readable by every user of the machine (/proc/PID/cmdline, ps), and a
// browser that was not running keeps them for as long as it runs: the
// token in them would open the node's API to any other user. So the
// opener gets a private page that forwards to the address instead.
func TestUIOpenKeepsTokenOffCommandLines(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	pathEnv, got := fakeOpener(t)
	r := runDemes(t, []string{pathEnv}, "ui", "--open", "--home", f.home)
	wantExit(t, r, 0)
	if args := openerArgs(t, got); strings.Contains(args, f.token) {
		t.Fatalf("demes ui --open put the API token in a command line: %q", args)
	}
}

// TestUIOpenPageIsPrivate: the page the opener gets is ~/demes-ui/open.html,
// a file of mode 0600 in a directory of mode 0700, that forwards to the
// address with its token.
func TestUIOpenPageIsPrivate(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	pathEnv, got := fakeOpener(t)
	home := t.TempDir()
	r := runDemes(t, []string{pathEnv, "HOME=" + home}, "ui", "--open", "--home", f.home)
	wantExit(t, r, 0)
	page := filepath.Join(home, "demes-ui", "open.html")
	if args := openerArgs(t, got); args != "file://"+page+"\n" {
		t.Fatalf("xdg-open got %q, want the URL of %s", args, page)
	}
	wantMode(t, filepath.Dir(page), os.ModeDir|0o700)
	wantMode(t, page, 0o600)
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(r.stdout)
	if !strings.Contains(addr, "#token="+f.token) || !strings.Contains(string(b), `content="0;url=`+addr+`"`) {
		t.Fatalf("the page does not forward to %q:\n%s", addr, b)
	}
	if !strings.Contains(r.stderr, page) {
		t.Fatalf("stderr does not name the page %s: %q", page, r.stderr)
	}
}

// TestUIOpenPageFollowsNoLink: a symbolic link at the page's name is
// replaced, not written through; a page directory that is a symbolic link,
// or that others may open, is refused, and the address is left for the
// person to open by hand, with the opener never run.
func TestUIOpenPageFollowsNoLink(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)

	t.Run("link at the page", func(t *testing.T) {
		t.Parallel()
		pathEnv, got := fakeOpener(t)
		home := t.TempDir()
		dir := filepath.Join(home, "demes-ui")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		victim := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
			t.Fatal(err)
		}
		page := filepath.Join(dir, "open.html")
		if err := os.Symlink(victim, page); err != nil {
			t.Fatal(err)
		}
		r := runDemes(t, []string{pathEnv, "HOME=" + home}, "ui", "--open", "--home", f.home)
		wantExit(t, r, 0)
		openerArgs(t, got)
		if b, err := os.ReadFile(victim); err != nil || string(b) != "victim" {
			t.Fatalf("the link's target was written: %q, %v", b, err)
		}
		wantMode(t, victim, 0o644)
		wantMode(t, page, 0o600)
	})

	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string) // makes dir, the page directory
		want string
	}{
		{"directory is a link", func(t *testing.T, dir string) {
			if err := os.Symlink(t.TempDir(), dir); err != nil {
				t.Fatal(err)
			}
		}, "is a symbolic link"},
		{"directory others may open", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "chmod 700"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pathEnv, got := fakeOpener(t)
			home := t.TempDir()
			dir := filepath.Join(home, "demes-ui")
			tc.make(t, dir)
			r := runDemes(t, []string{pathEnv, "HOME=" + home}, "ui", "--open", "--home", f.home)
			wantExit(t, r, 1)
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "open the address above in a browser yourself") {
				t.Fatalf("stderr does not say why and what to do: %q", r.stderr)
			}
			if !strings.Contains(r.stdout, "#token="+f.token) {
				t.Fatalf("the address is not printed for the person to open: %q", r.stdout)
			}
			if _, err := os.Stat(filepath.Join(dir, "open.html")); err == nil {
				t.Fatal("the page was written into a refused directory")
			}
			if _, err := os.Stat(got); err == nil {
				t.Fatal("xdg-open ran")
			}
		})
	}
}

// wantMode fails unless the file at path (not followed if a link) has mode.
func wantMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != mode {
		t.Fatalf("%s has mode %v, want %v", path, st.Mode(), mode)
	}
}

// TestUIOpenSaysWhenTheOpenerFails: an xdg-open that finds no browser (a
// machine without a desktop: exit 3) is a failure said in words, with the
// address left to open by hand, not "the browser opens ...".
func TestUIOpenSaysWhenTheOpenerFails(t *testing.T) {
	t.Parallel()
	f := newFakeAPI(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pathEnv := "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")
	r := runDemes(t, []string{pathEnv, "HOME=" + t.TempDir()}, "ui", "--open", "--home", f.home)
	wantExit(t, r, 1)
	if !strings.Contains(r.stderr, "xdg-open failed (exit status 3): it found no browser") || !strings.Contains(r.stderr, "open the address above in a browser yourself") {
		t.Fatalf("stderr does not say that the opener failed and what to do: %q", r.stderr)
	}
	if strings.Contains(r.stderr, "the browser opens") {
		t.Fatalf("stderr says the browser opens: %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "#token="+f.token) {
		t.Fatalf("the address is not printed for the person to open: %q", r.stdout)
	}
}
