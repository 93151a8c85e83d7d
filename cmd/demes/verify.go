package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/names"
	"github.com/demes/demes/transcript"
)

// trustFlag is the repeatable --trust: public ids that must have signed a
// statement of their history reaching the transcript's end.
type trustFlag []identity.PublicID

func (t *trustFlag) String() string {
	var s []string
	for _, p := range *t {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (t *trustFlag) Set(s string) error {
	p, err := identity.ParsePublicID(s)
	if err != nil {
		// The flag's error says "--trust: "VALUE": " before it.
		return errors.New("not a valid public id: " + publicIDProblem(err))
	}
	*t = append(*t, p)
	return nil
}

// verifyJSON is `demes verify --json`.
type verifyJSON struct {
	OK          bool                 `json:"ok"`
	GroupID     string               `json:"group_id"`
	Name        string               `json:"name"`
	Exporter    verifyMemberJSON     `json:"exporter"`
	ExportedAt  time.Time            `json:"exported_at"`
	Entries     int                  `json:"entries"`
	Rejected    int                  `json:"rejected"`
	FirstIndex  uint64               `json:"first_index"`
	LastIndex   uint64               `json:"last_index"`
	HeadIndex   uint64               `json:"head_index"`
	Head        string               `json:"head"`
	Chats       int                  `json:"chats"`
	Messages    int                  `json:"messages"`
	Unsealed    int                  `json:"unsealed"`
	Range       *verifyRangeJSON     `json:"range,omitempty"`
	Authors     []verifyAuthorJSON   `json:"authors"`
	Members     []verifyMemberJSON   `json:"members"`
	Checkpoints []verifyCheckersJSON `json:"checkpoints"`
	Attested    []verifyAttestedJSON `json:"attested"`
	Trusted     []string             `json:"trusted"`
}

// verifyRangeJSON is the range of a transcript of a range: the log indexes
// whose messages it shows, and how many chat messages the group accepted
// there.
type verifyRangeJSON struct {
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Chats int    `json:"chats"`
}

// verifyAttestedJSON is a member's signed head that the transcript carries:
// through which index, and whether it reaches the transcript's end.
type verifyAttestedJSON struct {
	PublicID    string `json:"public_id"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	NameShared  bool   `json:"name_shared,omitempty"`
	Index       uint64 `json:"index"`
	End         bool   `json:"end"`
}

type verifyMemberJSON struct {
	PublicID    string `json:"public_id"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	NameShared  bool   `json:"name_shared,omitempty"`
	Voter       bool   `json:"voter,omitempty"`
	JoinedAt    uint64 `json:"joined_at,omitempty"`
	LeftAt      uint64 `json:"left_at,omitempty"`
}

type verifyAuthorJSON struct {
	PublicID    string `json:"public_id"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	NameShared  bool   `json:"name_shared,omitempty"`
	Chats       int    `json:"chats"`
	Messages    int    `json:"messages"`
}

// verifyCheckersJSON is one member's checkpoints: how many, and the range of
// indexes they attest.
type verifyCheckersJSON struct {
	PublicID    string `json:"public_id"`
	Fingerprint string `json:"fingerprint"`
	Name        string `json:"name"`
	NameShared  bool   `json:"name_shared,omitempty"`
	Count       int    `json:"count"`
	FirstIndex  uint64 `json:"first_index"`
	LastIndex   uint64 `json:"last_index"`
}

// runVerify checks a transcript offline: it needs nothing but the file, no
// home and no running node.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("verify FILE [--trust PUBLIC_ID]... [--json]", stdout)
	var trust trustFlag
	f.Var(&trust, "trust", "require that `PUBLIC_ID` signed a statement of its history that reaches the transcript's end (repeatable)")
	asJSON := f.Bool("json", false, "print the summary as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 1, "the transcript FILE"); err != nil {
		return err
	}
	path := pos[0]
	doc, err := readTranscript(path)
	if err != nil {
		return verifyFailed(stdout, *asJSON, path, err)
	}
	s, err := transcript.Verify(doc, trust)
	if err != nil {
		return verifyFailed(stdout, *asJSON, path, verifyError(path, err))
	}
	out := summaryJSON(s)
	if *asJSON {
		return writeJSON(stdout, out)
	}
	printSummary(stdout, out)
	return nil
}

// verifyFailJSON is `demes verify --json` when the transcript does not
// check out (or cannot be read): ok false, and the reason that stderr
// shows too.
type verifyFailJSON struct {
	OK    bool   `json:"ok"`
	File  string `json:"file"`
	Error string `json:"error"`          // the reason, without the file's name
	Hint  string `json:"hint,omitempty"` // what to do, where there is a fix
}

// verifyFailed returns err, the reason path failed, after printing it as
// JSON on stdout for --json, so that a script reading stdout learns the
// outcome either way.
func verifyFailed(stdout io.Writer, asJSON bool, path string, err error) error {
	if !asJSON {
		return err
	}
	out := verifyFailJSON{File: path, Error: strings.TrimPrefix(oneLine(errorText(err)), path+": ")}
	var ee *exitError
	if errors.As(err, &ee) {
		out.Hint = oneLine(ee.hint)
	}
	if werr := writeJSON(stdout, out); werr != nil {
		return werr
	}
	return err
}

// readTranscript reads the file ("-" for stdin) up to the size limit.
func readTranscript(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, withHint(&fileError{path, err}, "name the file that `demes transcript -o FILE` wrote")
		}
		defer file.Close()
		r = file
	}
	doc, err := io.ReadAll(io.LimitReader(r, transcript.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read transcript %s: %w", path, err)
	}
	return doc, nil
}

// verifyError is the one-line reason, with a hint where one helps.
func verifyError(path string, err error) error {
	err = fmt.Errorf("%s: %w", path, err)
	switch {
	case errors.Is(err, transcript.ErrMalformed), errors.Is(err, transcript.ErrTruncated):
		return withHint(err, "verify the file exactly as `demes transcript` exported it: any change, even white space, breaks it")
	case errors.Is(err, transcript.ErrVersion):
		return withHint(err, "this transcript was written by another version of demes; verify it with that version")
	case errors.Is(err, transcript.ErrUntrusted):
		return withHint(err, "check the public id with its owner, and that this is the transcript of the group you expect")
	case errors.Is(err, transcript.ErrAttestation):
		return withHint(err, "the transcript does not match what that member signed: it was changed, or the group's history forked")
	}
	return err
}

// summaryJSON is the summary of --json. Each name has name_shared as the
// node would set it (see api.Member.NameShared), from the names of every
// member the transcript holds: a transcript is checked offline, so those
// are all the names there are.
func summaryJSON(s *transcript.Summary) verifyJSON {
	byID := map[identity.PublicID]string{}
	for _, m := range s.Members {
		byID[m.ID] = m.Name
	}
	shared := names.Shared(byID)
	out := verifyJSON{
		OK: true, GroupID: s.Group.String(), Name: s.Name, ExportedAt: s.ExportedAt.UTC(),
		Entries: s.Entries, Rejected: s.Rejected, FirstIndex: s.FirstIndex, LastIndex: s.LastIndex,
		HeadIndex: s.Head.Index, Head: hex.EncodeToString(s.Head.Head[:]), Chats: s.Chats, Messages: s.Messages, Unsealed: s.Unsealed,
		Authors: []verifyAuthorJSON{}, Members: []verifyMemberJSON{}, Checkpoints: []verifyCheckersJSON{}, Attested: []verifyAttestedJSON{}, Trusted: []string{},
	}
	if r := s.Range; r != nil {
		out.Range = &verifyRangeJSON{From: r.From, To: r.To, Chats: r.Chats}
	}
	for _, a := range s.Attested {
		out.Attested = append(out.Attested, verifyAttestedJSON{
			PublicID: a.Signer.String(), Fingerprint: a.Signer.Fingerprint(), Name: a.Name, NameShared: shared[a.Signer], Index: a.Index, End: a.Covers,
		})
	}
	for _, m := range s.Members {
		out.Members = append(out.Members, verifyMemberJSON{
			PublicID: m.ID.String(), Fingerprint: m.ID.Fingerprint(), Name: m.Name, NameShared: shared[m.ID],
			Voter: m.Voter, JoinedAt: m.JoinedAt, LeftAt: m.LeftAt,
		})
	}
	out.Exporter = verifyMemberJSON{PublicID: s.Exporter.String(), Fingerprint: s.Exporter.Fingerprint(), Name: byID[s.Exporter], NameShared: shared[s.Exporter]}
	for _, a := range s.Authors {
		out.Authors = append(out.Authors, verifyAuthorJSON{
			PublicID: a.ID.String(), Fingerprint: a.ID.Fingerprint(), Name: a.Name, NameShared: shared[a.ID], Chats: a.Chats, Messages: a.Messages,
		})
	}
	// A busy group has many checkpoints; per member, what matters is that
	// it attested, and up to where.
	at := map[identity.PublicID]int{}
	for _, c := range s.Checkpoints {
		i, ok := at[c.Signer]
		if !ok {
			i = len(out.Checkpoints)
			at[c.Signer] = i
			out.Checkpoints = append(out.Checkpoints, verifyCheckersJSON{
				PublicID: c.Signer.String(), Fingerprint: c.Signer.Fingerprint(), Name: c.Name, NameShared: shared[c.Signer], FirstIndex: c.Index,
			})
		}
		cp := &out.Checkpoints[i]
		cp.Count++
		cp.FirstIndex = min(cp.FirstIndex, c.Index)
		cp.LastIndex = max(cp.LastIndex, c.Index)
	}
	for _, t := range s.Trusted {
		out.Trusted = append(out.Trusted, t.String())
	}
	return out
}

// sharedNote is printed after a member whose name is flagged shared, as
// `demes status` notes it.
const sharedNote = "\tname shared with another member, or can pass for another"

// printSummary prints the summary for a person. Names come from the
// members' signed entries, but any member can choose any name, so they are
// shown with fingerprints, a shared one noted so (sharedNote), and cleaned
// of terminal control characters.
func printSummary(w io.Writer, s verifyJSON) {
	note := func(shared bool) string {
		if shared {
			return sharedNote
		}
		return ""
	}
	name := func(n, fp string) string {
		if n == "" {
			return fp
		}
		return clean(n, " ") + " (" + fp + ")"
	}
	fmt.Fprintf(w, "transcript of %q, group %s\n", clean(s.Name, " "), s.GroupID)
	fmt.Fprintf(w, "exported by %s at %s\n", name(s.Exporter.Name, s.Exporter.Fingerprint), s.ExportedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "entries: %d, log index %d to %d, %d rejected by the group as by every member\n", s.Entries, s.FirstIndex, s.LastIndex, s.Rejected)
	fmt.Fprintf(w, "chain head at index %d: %s\n", s.HeadIndex, s.Head)
	if r := s.Range; r != nil {
		fmt.Fprintf(w, "range: messages %d to %d of the log; the others are in the file as ciphertext only\n", r.From, r.To)
		fmt.Fprintf(w, "messages: %d accepted, %d of them in the range, %d decrypted by the exporter, each signed by its author\n", s.Chats, r.Chats, s.Messages)
	} else {
		fmt.Fprintf(w, "messages: %d accepted, %d decrypted by the exporter, each signed by its author\n", s.Chats, s.Messages)
	}
	if s.Unsealed > 0 {
		fmt.Fprintf(w, "  %d opened here with the keys in the transcript: their text is what the group received\n", s.Unsealed)
	}
	tw := newTable(w)
	if len(s.Authors) > 0 {
		fmt.Fprintln(tw, "\nauthors:")
		for _, a := range s.Authors {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d decrypted%s\n", clean(a.Name, " "), a.Fingerprint, plural(a.Chats, "message"), a.Messages, note(a.NameShared))
		}
	}
	fmt.Fprintln(tw, "\nmembers:")
	for _, m := range s.Members {
		state := fmt.Sprintf("joined at %d", m.JoinedAt)
		if m.LeftAt != 0 {
			state += fmt.Sprintf(", left at %d", m.LeftAt)
		} else if m.Voter {
			state += ", voter"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", clean(m.Name, " "), m.Fingerprint, state, note(m.NameShared))
	}
	fmt.Fprintln(tw, "\ncheckpoints:")
	if len(s.Checkpoints) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	for _, c := range s.Checkpoints {
		fmt.Fprintf(tw, "  %s\t%s\t%s\tattesting index %d to %d%s\n", clean(c.Name, " "), c.Fingerprint, plural(c.Count, "checkpoint"), c.FirstIndex, c.LastIndex, note(c.NameShared))
	}
	if len(s.Attested) > 0 {
		fmt.Fprintln(tw, "\nattested by (signed heads received directly from them):")
	}
	for _, a := range s.Attested {
		reach := fmt.Sprintf("through index %d", a.Index)
		if a.End {
			reach += ", the end"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\n", clean(a.Name, " "), a.Fingerprint, reach, note(a.NameShared))
	}
	tw.Flush()
	if len(s.Trusted) > 0 {
		var ts []string
		for _, t := range s.Trusted {
			for _, m := range s.Members {
				if m.PublicID == t {
					ts = append(ts, name(m.Name, m.Fingerprint))
				}
			}
		}
		fmt.Fprintf(w, "\ntrusted, and attested the end: %s\n", strings.Join(ts, ", "))
	}
	fmt.Fprintln(w, "\nverified: every signature, the order, the hash chain, the checkpoints and the messages check out")
}

// plural is "1 message", "2 messages".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
