package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// The commands that change a message: react, edit, delete. Each is a
// message of the group's log (see docs/PROTOCOL.md, "Message content"),
// sent as `demes send` sends one: it prints the change's id, and exits 3
// when the group did not commit it within --timeout (it then takes effect
// once committed, exactly once).

func runReact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("react MESSAGE_ID EMOJI [--remove] [--group G] [--timeout D] [--json]", stdout, "print the reaction as JSON", true)
	remove := f.Bool("remove", false, "take your reaction to the message back (give no EMOJI)")
	timeout := f.Duration("timeout", defaultSendTimeout, "how long to wait for the commit, a `duration` like 10s or 1m")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	want, what := 2, "the message id and the EMOJI"
	switch {
	case *remove:
		want, what = 1, "the message id"
	case len(pos) == 1:
		what = "the EMOJI to react with (or --remove, to take your reaction back)"
	}
	if err := f.wantArgs(pos, want, what); err != nil {
		return err
	}
	req := api.ChangeRequest{Remove: *remove}
	if !*remove {
		// The node checks it too (for the UI and the API); here it is
		// caught before anything is asked of the node, as bad usage.
		if err := checkMessageID(f, pos[0]); err != nil {
			return err
		}
		// As given, not trimmed: content.CheckReaction refuses a space
		// around it, as the node and the local API do.
		req.Emoji = pos[1]
		if err := content.CheckReaction(req.Emoji); err != nil {
			return usageError(err, "to answer in words, reply: demes send --reply-to "+pos[0]+" TEXT")
		}
	}
	return sendChange(ctx, f, api.RouteReact, pos[0], req, *timeout, stdout, stderr)
}

func runEdit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("edit MESSAGE_ID TEXT [--group G] [--timeout D] [--json]", stdout, "print the edit as JSON", true)
	timeout := f.Duration("timeout", defaultSendTimeout, "how long to wait for the commit, a `duration` like 10s or 1m")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) < 2 || strings.TrimSpace(strings.Join(pos[1:], " ")) == "" {
		return f.usagef("missing the message id and its new TEXT")
	}
	req := api.ChangeRequest{Text: strings.Join(pos[1:], " ")}
	return sendChange(ctx, f, api.RouteEdit, pos[0], req, *timeout, stdout, stderr)
}

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("delete MESSAGE_ID [--group G] [--timeout D] [--json]", stdout, "print the delete as JSON", true)
	timeout := f.Duration("timeout", defaultSendTimeout, "how long to wait for the commit, a `duration` like 10s or 1m")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the message id"); err != nil {
		return err
	}
	return sendChange(ctx, f, api.RouteDelete, pos[0], api.ChangeRequest{}, *timeout, stdout, stderr)
}

// checkMessageID refuses what is not a message id before asking the node.
func checkMessageID(f *nodeFlags, id string) error {
	if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
		return f.usagef("%q is not a message id (32 hex digits; 'demes messages --ids' shows them)", id)
	}
	return nil
}

func sendChange(ctx context.Context, f *nodeFlags, route, id string, req api.ChangeRequest, timeout time.Duration, stdout, stderr io.Writer) error {
	if err := checkMessageID(f, id); err != nil {
		return err
	}
	if timeout <= 0 {
		return f.usagef("--timeout must be positive, not %v", timeout)
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	req.TimeoutMS = timeout.Milliseconds()
	m, err := postToOutbox(ctx, c, api.MessagePath(route, g.GroupID, id), req, timeout, "the change", *f.json, stdout)
	if err != nil {
		return err
	}
	if m.Unchanged {
		// As admin add/remove: exit 0, so that a script may run it again.
		if req.Emoji == "" {
			fmt.Fprintf(stderr, "demes: you have no reaction to message %s in %q; nothing changed\n", id, clean(g.Name, " "))
		} else {
			fmt.Fprintf(stderr, "demes: your reaction to message %s in %q is %s already; nothing changed\n", id, clean(g.Name, " "), clean(req.Emoji, ""))
		}
		return nil
	}
	if m.State != api.StateCommitted {
		fmt.Fprintf(stderr, "demes: the %s %s is not in the group's order yet; it stays in the outbox and takes effect when the group commits it\n", m.Kind, m.ID)
		return &exitError{code: exitAccepted}
	}
	return nil
}
