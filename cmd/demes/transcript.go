package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
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
func writeFileFrom(path string, r io.Reader, perm os.FileMode) (int64, error) {
	return writeFileWith(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}
