package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/demes/demes/api"
)

// transcriptTimeout allows for a long history.
const transcriptTimeout = 5 * time.Minute

// runTranscript exports the signed transcript of a group, as this node holds
// it, for `demes verify` or a third party.
func runTranscript(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("transcript [--group G] -o FILE", stdout, "", true)
	out := f.String("o", "", "write the transcript to `FILE` (\"-\" for stdout)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *out == "" {
		return f.usagef("missing -o FILE")
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, api.GroupPath(api.RouteTranscript, g.GroupID), nil, transcriptTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *out == "-" {
		_, err := io.Copy(stdout, resp.Body)
		return err
	}
	n, err := writeFileFrom(*out, resp.Body, 0o644)
	if err != nil {
		return fmt.Errorf("write transcript: %w", err)
	}
	fmt.Fprintf(stderr, "demes: wrote the transcript of %q to %s (%d bytes); check it with: demes verify %s\n",
		clean(g.Name, " "), *out, n, *out)
	return nil
}

// writeFileFrom writes r to path through a temporary file and a rename, so an
// interrupted export does not leave a cut transcript behind under its name.
func writeFileFrom(path string, r io.Reader, perm os.FileMode) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(tmp, r); err != nil {
		return n, err
	}
	if err = tmp.Chmod(perm); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, err
	}
	if err = tmp.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), path)
}
