package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/transcript"
)

// transcriptTimeout allows for a long history.
const transcriptTimeout = 5 * time.Minute

// rangeHint says how to name the ends of a transcript's range.
const rangeHint = "--from and --to each take a message id (demes messages --ids shows them), a log index, or a time: 2026-12-04 or 2026-12-04T15:04:05Z"

// runTranscript exports the signed transcript of a group, as this node holds
// it, for `demes verify` or a third party; with --from or --to, with the
// messages of that range only.
func runTranscript(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("transcript [--group G] -o FILE [--from X] [--to Y]", stdout, "", true)
	out := f.String("o", "", "write the transcript to `FILE` (\"-\" for stdout)")
	from := f.String("from", "", "show the messages from `X` on (included): a message id, a log index, or a time (RFC 3339, or a date YYYY-MM-DD: from its start, UTC); the others stay ciphertext")
	to := f.String("to", "", "show the messages up to `Y` (included), named as --from (a date: to its end)")
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
	if *out != "-" {
		// Checked before the node is asked for what may be a long export.
		if err := checkNewFile(*out); err != nil {
			return err
		}
	}
	path, err := transcriptPath(*from, *to)
	if err != nil {
		return err
	}
	c, g, err := f.connect(ctx)
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, http.MethodGet, api.GroupPath(api.RouteTranscript, g.GroupID)+path, nil, transcriptTimeout)
	if err != nil {
		return rangeError(err, path != "")
	}
	defer resp.Body.Close()
	if *out == "-" {
		_, err := io.Copy(stdout, resp.Body)
		return err
	}
	// Readable by its owner only: it holds the messages and their keys.
	// Whoever it is for gets it from them (a backup is 0600 too). Never
	// over an existing file, as download's own name is not: an earlier
	// transcript may be the record someone relies on.
	n, err := writeNewFileWith(*out, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, resp.Body)
		return err
	})
	if errors.Is(err, fs.ErrExist) {
		return withHint(err, existsHint)
	}
	if err != nil {
		return fmt.Errorf("write transcript: %w", err)
	}
	what := "the transcript"
	if path != "" {
		what = "a transcript of a range"
	}
	fmt.Fprintf(stderr, "demes: wrote %s of %q to %s (%d bytes); check it with: demes verify %s\n",
		what, clean(g.Name, " "), *out, n, *out)
	return nil
}

// transcriptPath checks the ends of the range and returns the query that
// asks the node for it ("" for the whole transcript). The node resolves
// them to log indexes; what can be told without the log (a malformed end,
// two indexes or two times in the wrong order) is bad usage here.
func transcriptPath(from, to string) (string, error) {
	var fb, tb transcript.Bound
	var err error
	q := url.Values{}
	if from != "" {
		if fb, err = transcript.ParseBound(from, false); err != nil {
			return "", usageError(fmt.Errorf("--from: %v", err), rangeHint)
		}
		q.Set("from", from)
	}
	if to != "" {
		if tb, err = transcript.ParseBound(to, true); err != nil {
			return "", usageError(fmt.Errorf("--to: %v", err), rangeHint)
		}
		q.Set("to", to)
	}
	if err := transcript.CheckOrder(fb, tb); err != nil {
		return "", usageError(err, "--from must come before --to")
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// rangeError is the node's refusal of a range: a start after the end is
// bad usage (exit 2), a range with no message a failure (exit 1), each with
// the hint of the command line rather than the API's.
func rangeError(err error, ranged bool) error {
	var ae answerError
	if !ranged || !errors.As(err, &ae) {
		return err
	}
	switch ae.status {
	case http.StatusBadRequest:
		return usageError(ae.error, "--from must come before --to in the group's log")
	case http.StatusNotFound:
		return withHint(ae.error, rangeHint)
	}
	return err
}
