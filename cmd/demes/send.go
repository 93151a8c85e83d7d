package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/demes/demes/api"
)

// defaultSendTimeout is how long send waits for the commit (the contract's
// default).
const defaultSendTimeout = 10 * time.Second

// sendMargin is added to --timeout for the HTTP call: the node answers
// "tentative" when --timeout runs out, and that answer needs time to arrive.
const sendMargin = 30 * time.Second

// postToOutbox posts a message or a change of one (what names it in a hint)
// to the node, which waits up to timeout for its commit, and prints its id,
// or the whole message with jsonOut.
func postToOutbox(ctx context.Context, c *client, path string, req any, timeout time.Duration, what string, jsonOut bool, stdout io.Writer) (api.Message, error) {
	var m api.Message
	if _, err := c.call(ctx, http.MethodPost, path, req, &m, timeout+sendMargin); err != nil {
		if errors.As(err, new(unansweredError)) || strings.Contains(err.Error(), "may still be sent") {
			// The node may have taken it before the call failed (or
			// before it stopped, which it says); sending it again would
			// then send it twice.
			err = withHint(err, what+" may be in the outbox already; check with 'demes messages' before sending it again")
		}
		return api.Message{}, err
	}
	switch {
	case m.Unchanged && jsonOut:
		// Nothing was sent: no id, time or state to show.
		return m, writeJSON(stdout, unchangedJSON{Kind: m.Kind, Target: m.Target, GroupID: m.GroupID, Unchanged: true})
	case m.Unchanged:
	case jsonOut:
		return m, writeJSON(stdout, sentJSON(m))
	default:
		fmt.Fprintln(stdout, m.ID)
	}
	return m, nil
}

// sentJSON is what --json prints for a message (or a change) just sent:
// the message, and when it is tentative, always delivered, others and
// held, even where they are 0 or false (the API leaves those out; a
// script reads them), and no index, which it has not yet (the API's 0).
func sentJSON(m api.Message) any {
	if m.State == api.StateCommitted {
		return m
	}
	// The outer fields win over the embedded ones of the same name.
	return struct {
		api.Message
		Index     uint64 `json:"index,omitempty"`
		Delivered int    `json:"delivered"`
		Others    int    `json:"others"`
		Held      bool   `json:"held"`
	}{m, m.Index, m.Delivered, m.Others, m.Held}
}

// unchangedJSON is what --json prints for a change the node did not send
// because it would change nothing (api.Message.Unchanged).
type unchangedJSON struct {
	Kind      string `json:"kind"`
	Target    string `json:"target"`
	GroupID   string `json:"group_id"`
	Unchanged bool   `json:"unchanged"`
}

// runSend sends a chat message and waits until it is committed to the group's
// log. The message id is the last line of stdout. When the commit does not
// come within --timeout, or the group cannot commit now (too many voters
// offline: the node then hands the message directly to the members online
// and answers at once), the message stays in the node's durable outbox and
// joins the group's order later, exactly once: send says so, with how many
// members hold it, and exits 3.
func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("send TEXT [--group G] [--timeout D] [--reply-to MESSAGE_ID] [--json] | send --file PATH [--group G]", stdout, "print the message as JSON", true)
	timeout := f.Duration("timeout", defaultSendTimeout, "how long to wait for the commit, a `duration` like 10s or 1m")
	replyTo := f.String("reply-to", "", "send the message as a reply to the message with this `MESSAGE_ID`")
	file := f.String("file", "", "send the file at `PATH` (an attachment) instead of TEXT")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	// `demes send hello there` sends "hello there", as a person means it.
	text := strings.Join(pos, " ")
	if *file != "" {
		if text != "" || *replyTo != "" {
			return f.usagef("give TEXT or --file PATH, not both (a file is sent alone, not as a reply)")
		}
	} else if strings.TrimSpace(text) == "" {
		return f.usagef("missing the message TEXT")
	}
	if *timeout <= 0 {
		return f.usagef("--timeout must be positive, not %v", *timeout)
	}
	if *replyTo != "" {
		if err := checkMessageID(f, *replyTo); err != nil {
			return err
		}
	}
	var up *upload
	if *file != "" {
		if up, err = openUpload(*file); err != nil {
			return err
		}
		defer up.file.Close()
	}
	c, g, err := f.connectMember(ctx)
	if err != nil {
		return err
	}
	req := api.SendRequest{Text: text, ReplyTo: *replyTo, TimeoutMS: timeout.Milliseconds()}
	start := time.Now()
	var m api.Message
	if up != nil {
		m, err = sendFile(ctx, c, g.GroupID, up, *timeout, *f.json, stdout)
	} else {
		m, err = postToOutbox(ctx, c, api.GroupPath(api.RouteMessages, g.GroupID), req, *timeout, "the message", *f.json, stdout)
	}
	if err != nil {
		return err
	}
	if m.State != api.StateCommitted {
		reached := ""
		if m.Others > 0 {
			reached = fmt.Sprintf("; delivered directly to %d of %d other members", m.Delivered, m.Others)
		}
		if m.Held {
			// Not "could not commit": that sends a person to look at the
			// network, and nothing was delivered directly either.
			fmt.Fprintf(stderr, "demes: message %s is held back in the outbox: sending it now would be over your quota in this group ('demes group settings' shows it); it goes out by itself, exactly once, when the quota allows\n", m.ID)
			return &exitError{code: exitAccepted}
		}
		why := fmt.Sprintf("the group could not commit it within %v", *timeout)
		if time.Since(start) < *timeout {
			why = "the group cannot commit it now: too many of its voters are offline"
		}
		fmt.Fprintf(stderr, "demes: message %s is not in the group's order yet (%s)%s; it stays in the outbox and joins the order exactly once when the group can commit\n", m.ID, why, reached)
		return &exitError{code: exitAccepted}
	}
	return nil
}
