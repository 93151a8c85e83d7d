package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// Attachments: send --file and download (docs/CLI.md).

// defaultDownloadTimeout is how long download waits for a file the node is
// still fetching.
const defaultDownloadTimeout = time.Minute

// upload is the file send --file sends, opened before the node is asked:
// a path that names no file, or a file that cannot be sent by its name, is
// the person's to fix.
type upload struct {
	file *os.File
	size int64
	name string // the file's name, without its directory
}

// openUpload opens the file at path for send --file.
func openUpload(path string) (*upload, error) {
	unreadable := func(err error) error {
		return withHint(&fileError{"cannot send " + path, err}, "check the path given with --file")
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, unreadable(err)
	}
	fi, err := file.Stat()
	switch {
	case err != nil:
		err = unreadable(err)
	case !fi.Mode().IsRegular():
		err = failf("give a regular file", "%s is not a file", path)
	case content.CheckFileName(filepath.Base(path)) != nil:
		err = failf("rename the file", "cannot send a file named %q", filepath.Base(path))
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return &upload{file: file, size: fi.Size(), name: filepath.Base(path)}, nil
}

// sendFile uploads u to the group as a file message and prints its id (or
// the message with jsonOut).
func sendFile(ctx context.Context, c *client, gid string, u *upload, timeout time.Duration, jsonOut bool, stdout io.Writer) (api.Message, error) {
	mediaType := mime.TypeByExtension(filepath.Ext(u.name))
	if mt, _, err := mime.ParseMediaType(mediaType); err == nil {
		mediaType = mt
	} else {
		mediaType = ""
	}
	q := url.Values{"name": {u.name}, "timeout_ms": {strconv.FormatInt(timeout.Milliseconds(), 10)}}
	if mediaType != "" {
		q.Set("type", mediaType)
	}
	var m api.Message
	resp, err := c.sendBody(ctx, http.MethodPost, api.GroupPath(api.RouteFiles, gid)+"?"+q.Encode(), u.file, u.size, "application/octet-stream", timeout+sendMargin+fileMargin(u.size))
	if err != nil {
		if errors.As(err, new(unansweredError)) {
			err = withHint(err, "the file may be in the outbox already; check with 'demes messages' before sending it again")
		}
		return api.Message{}, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&m); err != nil {
		return api.Message{}, fmt.Errorf("the node's answer to the upload is not what this demes expects: %w", err)
	}
	if jsonOut {
		return m, writeJSON(stdout, sentJSON(m))
	}
	fmt.Fprintln(stdout, m.ID)
	return m, nil
}

// fileMargin is the time a transfer of size bytes over loopback may take
// on a slow machine, on top of the send's wait: 1 s per 4 MB.
func fileMargin(size int64) time.Duration { return time.Duration(size/(4<<20)+1) * time.Second }

// unwrapPath drops the *PathError's operation: "open x: no such file" reads
// "x: no such file".
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// runDownload writes the file a message carries: to -o FILE, to stdout
// with -o -, or else to its own name in the current directory, never over
// an existing file (see checkNewFile). It waits up to --timeout while the
// node fetches it.
func runDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("download MESSAGE_ID [-o FILE] [--group G] [--timeout D]", stdout, "", true)
	out := f.String("o", "", "write the file to this `path` (- for stdout); default: its own name, here")
	timeout := f.Duration("timeout", defaultDownloadTimeout, "how long to wait while the node fetches the file, a `duration`")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return f.usagef("give one MESSAGE_ID ('demes messages --ids' shows them)")
	}
	if err := checkMessageID(f, pos[0]); err != nil {
		return err
	}
	if *timeout <= 0 {
		return f.usagef("--timeout must be positive, not %v", *timeout)
	}
	if *out != "" && *out != "-" {
		// Checked before the node is asked, as transcript -o and backup -o
		// do: the file there may be one someone keeps.
		if err := checkNewFile(*out); err != nil {
			return err
		}
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	path := api.FilePath(g.GroupID, pos[0])
	deadline := time.Now().Add(*timeout)
	var resp *http.Response
	for {
		resp, err = c.sendBody(ctx, http.MethodGet, path, nil, 0, "", *timeout+time.Minute)
		var ex *exitError
		if err == nil || !errors.As(err, &ex) || !strings.Contains(ex.Error(), "still arriving") || time.Now().After(deadline) {
			break
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.New("interrupted")
		case <-t.C:
		}
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	copyBody := func(w io.Writer) error {
		n, err := io.Copy(w, resp.Body)
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("the download stopped after %d of %d bytes", n, resp.ContentLength)
		}
		return err
	}
	if *out == "-" {
		if err := copyBody(stdout); err != nil {
			return failf("try again: demes download "+pos[0], "cannot download the file: %v", err)
		}
		return nil
	}
	name, hint := *out, existsHint
	if name == "" {
		_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		// The sender's name, without leading dots: a member could name
		// the file .bash_profile or .envrc, to be planted, hidden, in
		// the directory the download runs in (browsers drop them too).
		name, hint = strings.TrimLeft(params["filename"], "."), "choose another name with -o FILE"
		if content.CheckFileName(name) != nil {
			name = pos[0]
		}
	}
	// Through a temporary file, never over an existing one: a download
	// that stops leaves nothing at the path, and a file that appeared
	// there since the check above is kept.
	n, err := writeNewFileWith(name, 0o600, copyBody)
	switch {
	case errors.Is(err, fs.ErrExist):
		return withHint(err, hint)
	case err != nil:
		return failf("try again: demes download "+pos[0], "cannot download the file: %v", err)
	}
	fmt.Fprintf(stderr, "demes: wrote %s (%d bytes)\n", name, n)
	return nil
}
