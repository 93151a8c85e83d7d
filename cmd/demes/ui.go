package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/demes/demes/api"
)

// runUI prints the address of the running serve's browser UI with its token,
// as serve printed it at start, for a new tab or a browser restarted since
// (the tab keeps the token only for its session). With --open it also asks
// the desktop to open it, through a private page that keeps the token off
// command lines (openBrowser).
func runUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("ui [--open] [--json]", stdout, "print url as JSON", false)
	open := f.Bool("open", false, "also open the address in the desktop's browser")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	// serve.json may have outlived its serve: only a serve that answers
	// with this token has this address.
	if _, err := c.call(ctx, http.MethodGet, api.RouteStatus, nil, nil, apiTimeout); err != nil {
		return err
	}
	addr := c.base.JoinPath("/").String() + "#token=" + c.token
	if *f.json {
		if err := writeJSON(stdout, struct {
			URL string `json:"url"`
		}{addr}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, addr)
	}
	if *open {
		return openBrowser(addr, stderr)
	}
	return nil
}

// openBrowser opens addr, the UI's address with its token, in the
// desktop's browser without putting the token on a command line: the
// arguments of the opener and of a browser it starts are readable by every
// user of the machine (/proc/PID/cmdline, ps), for as long as the browser
// runs. Like Jupyter, it writes a page only this user can read that
// forwards to addr (writeOpenPage) and hands the opener that page instead.
// When the page cannot be written, nothing is opened: the person opens
// the address printed above by hand.
func openBrowser(addr string, stderr io.Writer) error {
	opener := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		opener = "open"
	case "windows":
		opener = "explorer"
	}
	path, err := exec.LookPath(opener)
	if err != nil {
		return withHint(fmt.Errorf("cannot open a browser here: no %s", opener), "open the address above in a browser yourself")
	}
	dir, err := openPageDir()
	if err != nil {
		return withHint(fmt.Errorf("cannot open a browser: %v", err), "open the address above in a browser yourself")
	}
	page, err := writeOpenPage(dir, addr)
	if err != nil {
		return withHint(fmt.Errorf("cannot write the page that opens the browser: %v", unwrapPath(err)), "open the address above in a browser yourself")
	}
	arg := page
	if runtime.GOOS != "windows" {
		arg = (&url.URL{Scheme: "file", Path: filepath.ToSlash(page)}).String()
	}
	cmd := exec.Command(path, arg)
	if err := cmd.Start(); err != nil {
		return withHint(fmt.Errorf("cannot open a browser: %v", err), "open the address above in a browser yourself")
	}
	// An opener that finds no browser (xdg-open on a machine without a
	// desktop: exit 3) fails at once; one that opened it returns soon too,
	// or keeps running with the browser it started (xdg-open's fallback
	// runs $BROWSER in the foreground), which is left to run. Without this
	// wait, a failed opener read as "the browser opens". Explorer exits 1
	// when it opened the page, so its status says nothing.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && runtime.GOOS != "windows" && errors.As(err, &exit) {
			why := ""
			if opener == "xdg-open" && exit.ExitCode() == 3 {
				why = ": it found no browser to open the page with"
			}
			return withHint(fmt.Errorf("cannot open a browser: %s failed (exit status %d)%s", opener, exit.ExitCode(), why), "open the address above in a browser yourself")
		}
	case <-time.After(openerWait):
	}
	fmt.Fprintf(stderr, "demes: the browser opens %s, a page only you can read that forwards to the address with its token\n", page)
	return nil
}

// openerWait is how long openBrowser waits for the opener to fail.
const openerWait = 3 * time.Second

// openPageName is the name of the page `demes ui --open` writes. The name
// is fixed, so that each run replaces the page of the one before instead of
// leaving one more: the page holds the token, as HOME/token does, with the
// same protection (only this user reads it), and it is not removed, since
// nothing tells when the browser has read it (a browser that was not
// running may take seconds to start).
const openPageName = "open.html"

// openPageDir is the directory of that page. It must be one the browser
// can read: a confined browser cannot read every file of its user. Ubuntu's
// Firefox and Chromium are snaps, which read the files of the user's home
// but not those under a hidden directory (~/.demes, ~/.cache,
// ~/.local/share, where Jupyter's page is), nor the host's /tmp or
// $XDG_RUNTIME_DIR; flatpak browsers are handed the file itself by the
// opener (its document portal) wherever it is. So on Linux and the other
// Unix systems it is ~/demes-ui, a directory of the home that is not hidden;
// on macOS and Windows, whose browsers are not confined that way, it is the
// user's cache directory (~/Library/Caches/demes, %LocalAppData%\demes).
func openPageDir() (string, error) {
	switch runtime.GOOS {
	case "darwin", "windows":
		d, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(d, "demes"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, "demes-ui"), nil
}

// writeOpenPage writes in dir the page that forwards to addr, and returns
// its path. dir is created 0700, and one that exists must be a directory
// (not a symbolic link) of this user that no one else may read or write:
// otherwise another user could read the page, or swap it for one of their
// own. The page is written to a new file (O_EXCL, mode 0600, so a name
// planted there fails instead of being followed) and renamed over
// dir/open.html, which replaces whatever is at that name, a symbolic link
// included, without writing through it.
func writeOpenPage(dir, addr string) (string, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	if err := checkPrivateDir(dir); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".open-*.html")
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(openPage(addr))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	page := filepath.Join(dir, openPageName)
	if err == nil {
		if err = os.Rename(f.Name(), page); err != nil {
			err = fmt.Errorf("cannot put %s in place: %w", page, errors.Unwrap(err))
		}
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return page, nil
}

// checkPrivateDir fails unless dir is a directory, not a symbolic link, that
// only this user may read and write.
func checkPrivateDir(dir string) error {
	st, err := os.Lstat(dir)
	switch {
	case err != nil:
		return err
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link, not a directory of its own", dir)
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case !ownedByMe(st):
		return fmt.Errorf("%s belongs to another user", dir)
	case runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("other users may open %s (mode %#o); run chmod 700 %s, or remove it", dir, st.Mode().Perm(), dir)
	}
	return nil
}

// openPage is a page that sends the browser to addr at once. It is opened
// as a file, so the UI's Content-Security-Policy does not apply to it; the
// refresh needs no script, and the link is there for a browser that does
// not follow it.
func openPage(addr string) string {
	a := html.EscapeString(addr)
	return `<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=` + a + `">
<title>DeMeS</title></head>
<body><p><a href="` + a + `">Open the DeMeS UI</a></p></body></html>
`
}
