package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// InvitePrefix starts every invite code, so that a pasted code is recognised.
const InvitePrefix = "demes-invite-"

// inviteCode is the body of the signed envelope an invite code carries: enough
// for the invitee to find the group and check who invited it. It is a CBOR
// array of six elements, or of seven when Relays is not empty (see
// invite_relays.go), so that codes without relays read as before.
type inviteCode struct {
	_         struct{} `cbor:",toarray"`
	GroupName string
	Invitee   []byte // 64-byte public id
	Inviter   []byte // 64-byte public id
	URLs      []string
	// Index is where the invite entry was committed, and Expires its
	// expiry: the joiner checks both against the log it receives.
	Index   uint64
	Expires int64
	// Relays are the circuit relays the group's settings list, as they
	// list them: the joiner holds a slot on them from the start of its
	// join, so that the members reach it through them.
	Relays []string
}

// joinReply is what a member answers to an accepted join: the members as it
// knows them (the joiner trusts them until its own log says who they are)
// and the commit index the joiner must reach to have caught up.
type joinReply struct {
	_       struct{} `cbor:",toarray"`
	Name    string
	Members []replyMember
	Commit  uint64
}

type replyMember struct {
	_        struct{} `cbor:",toarray"`
	PublicID []byte
	URL      string
	Voter    bool
}

// Invite authorises publicID to join the group for
// [state.DefaultInviteLifetime]: see [Node.InviteFor].
func (n *Node) Invite(ctx context.Context, groupID, publicID string) (string, error) {
	return n.InviteFor(ctx, groupID, publicID, 0)
}

// InviteFor authorises publicID to join the group until ttl from now (0: the
// default of 7 days): it commits a signed invite entry naming it, then
// returns an invite code for the invitee. The invite is used up by the join,
// and cancelled when revoked, when it expires, and when this member leaves or
// may no longer invite. When the group cannot commit (no host, a majority of
// its voters offline), the invite is queued instead and the error wraps
// [ErrQueued]: the node commits it when it can, and the same call then
// returns its code (invitequeue.go).
func (n *Node) InviteFor(ctx context.Context, groupID, publicID string, ttl time.Duration) (string, error) {
	return n.invite(ctx, groupID, publicID, ttl, crypto.TypeInvite)
}

// invite is InviteFor with the invite's entry type: crypto.TypeInvite for
// a member, crypto.TypeKeeper for a keeper (keeper.go).
func (n *Node) invite(ctx context.Context, groupID, publicID string, ttl time.Duration, typ crypto.Type) (string, error) {
	if n.cfg.Keeper {
		return "", errKeeper
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return "", err
	}
	invitee, err := identity.ParsePublicID(publicID)
	if err != nil {
		return "", fmt.Errorf("invite: %v: %w", err, ErrInvalid)
	}
	if ttl == 0 {
		ttl = state.DefaultInviteLifetime
	}
	if ttl < time.Minute || ttl > state.MaxInviteLifetime {
		return "", fmt.Errorf("invite: an invite must last from a minute to %d days, not %v: %w", state.MaxInviteLifetime/(24*time.Hour), ttl, ErrInvalid)
	}
	// Right after a start the view is behind this node's own log (its
	// membership, its queued invites): wait for the replay, as a send does.
	if err := g.waitView(ctx, func(v *view) bool { return v.replayed }); err != nil {
		return "", fmt.Errorf("invite: %w", err)
	}
	v := g.view.Load()
	if !v.self {
		return "", fmt.Errorf("invite: this node is not a member of group %s: %w", g.id, ErrInvalid)
	}
	if !v.canInvite {
		return "", fmt.Errorf("invite: only admins may invite in this group (an admin can allow everyone to with the group's settings): %w", ErrForbidden)
	}
	if _, ok := v.members[invitee.Sign]; ok {
		return "", fmt.Errorf("invite: %s is already a member: %w", invitee.Fingerprint(), ErrInvalid)
	}
	// A new invite of an identity replaces its open one, and a join takes
	// the kind of the invite open when it commits, whatever the code: an
	// open keeper invite replaced by a member's would have the keeper join
	// with its keeper code as an ordinary member, sealed every key (a
	// person's, replaced by a keeper invite, would join as a keeper).
	if open, ok := v.invites[invitee.Sign]; ok && v.invited(invitee.Sign) && open.Keeper != (typ == crypto.TypeKeeper) {
		kind, other := "a keeper", "a member"
		if !open.Keeper {
			kind, other = other, kind
		}
		return "", fmt.Errorf("invite: %s has an open invite as %s, which this one would replace; revoke it first (demes invite --revoke) to invite it as %s: %w", invitee.Fingerprint(), kind, other, ErrInvalid)
	}
	// A group that cannot commit queues the invite and answers at once
	// (invitequeue.go); asked again, the queue answers its code once it
	// has committed.
	// (Keepers are added with the group committing: `demes keeper add`
	// answers with the code or fails.)
	if typ == crypto.TypeInvite {
		if code, handled, err := n.maybeQueueInvite(ctx, g, invitee, ttl); handled {
			return code, err
		}
	}
	before := v.invites[invitee.Sign].Index
	committed := func(v *view) bool { inv, ok := v.invites[invitee.Sign]; return ok && inv.Index > before }
	entry := &state.InviteBody{Invitee: invitee.Bytes(), Expires: time.Now().Add(ttl).UnixNano()}
	// A group that stops committing while this waits (its majority went
	// offline meanwhile) queues the invite then, rather than fail after
	// membershipTimeout (queueWhenStuck). A frame proposed before may
	// still commit: then two invite entries for the invitee commit, the
	// later replacing the earlier, and the queue answers the later's code.
	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if typ == crypto.TypeInvite {
		go g.queueWhenStuck(wctx, stop)
	}
	if err := n.commitUntil(wctx, g, "invite", "does the group have a host?", committed, g.proposeEntryFn(typ, entry)); err != nil {
		if errors.Is(context.Cause(wctx), errStuckMeanwhile) && ctx.Err() == nil && !committed(g.view.Load()) {
			if code, handled, qerr := n.maybeQueueInvite(ctx, g, invitee, ttl); handled {
				return code, qerr
			}
		}
		return "", err
	}
	v = g.view.Load()
	return n.inviteCode(g.id, v, invitee, v.invites[invitee.Sign])
}

// inviteCode makes the invite code of inv, the committed invite of
// invitee in group gid, as the group's view v shows it.
func (n *Node) inviteCode(gid crypto.GroupID, v *view, invitee identity.PublicID, inv state.Invite) (string, error) {
	urls := []string{n.URL()}
	for _, m := range v.members {
		if m.id != n.self && m.url != "" && len(urls) < 8 {
			urls = append(urls, m.url)
		}
	}
	body, err := state.Encode(&inviteCode{GroupName: v.name, Invitee: invitee.Bytes(), Inviter: n.self.Bytes(), URLs: urls,
		Index: inv.Index, Expires: inv.Expires, Relays: v.settings.Relays})
	if err != nil {
		return "", err
	}
	// A keeper's code is signed as a keeper entry, so that the keeper
	// knows before it joins that it joins as one.
	typ := crypto.TypeInvite
	if inv.Keeper {
		typ = crypto.TypeKeeper
	}
	frame, err := n.sign(&crypto.Envelope{Type: typ, Group: gid, To: invitee.Sign, Payload: body})
	if err != nil {
		return "", err
	}
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(frame), nil
}

// errChallengeRefused is a member's refusal of a join challenge: it has no
// open invite for the joiner (nor is the joiner a member).
var errChallengeRefused = errors.New("the member refused the join challenge")

// errJoinStalled marks a join request that a member took (it answered the
// challenge) and did not answer in time: it could not commit the join, as
// when a majority of the group's voters is offline.
var errJoinStalled = errors.New("the member did not add this node in time")

// errJoinNotCommitted marks a join request that a member took and answered
// that it could not commit in time (notCommittedBody): the group cannot
// commit now.
var errJoinNotCommitted = errors.New("the member could not commit the join in time")

// errNoAnswer marks a join attempt that no member answered (no connection,
// or no answer in time).
var errNoAnswer = errors.New("no answer")

// noAnswerWhy says in a few words why a member did not answer.
func noAnswerWhy(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there"
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to that address"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "the host name does not resolve"
	}
	return "no answer"
}

// ParsedInvite is a decoded, signature-checked invite code.
type ParsedInvite struct {
	Group     crypto.GroupID
	GroupName string
	Invitee   identity.PublicID
	Inviter   identity.PublicID
	URLs      []string
	Index     uint64
	Expires   time.Time
	// Relays are the circuit relays of the group's settings when the
	// invite was made (none in a code from before relays).
	Relays []string
	// Keeper is set for a keeper's code (see keeper.go): the invitee joins
	// as a keeper.
	Keeper bool
}

// ParseInvite decodes an invite code and checks its signature.
func ParseInvite(code string) (*ParsedInvite, error) {
	code = strings.TrimSpace(code)
	if !strings.HasPrefix(code, InvitePrefix) {
		return nil, fmt.Errorf("not an invite code: it must start with %q", InvitePrefix)
	}
	// A damaged code is said in words, without the decoders' own (base64's
	// "illegal base64 data at input byte 57" helps nobody who pasted it).
	payload := code[len(InvitePrefix):]
	frame, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		if i := strings.IndexFunc(payload, notInviteChar); i >= 0 {
			r, _ := utf8.DecodeRuneInString(payload[i:])
			return nil, fmt.Errorf("invite code is damaged: it holds %q, which no invite code has; copy the whole code again, exactly as it was sent, or ask the inviter for a new one", r)
		}
		return nil, errors.New("invite code is damaged or incomplete: characters are missing from it, or were added; copy the whole code again, or ask the inviter for a new one")
	}
	env, err := crypto.Verify(frame)
	if err != nil {
		return nil, errors.New("invite code is damaged or incomplete: it is not the code the inviter signed (a character changed or missing); copy the whole code again, or ask the inviter for a new one")
	}
	var b inviteCode
	if (env.Type != crypto.TypeInvite && env.Type != crypto.TypeKeeper) || state.Decode(env.Payload, &b) != nil {
		return nil, errors.New("invite code is malformed")
	}
	invitee, err := identity.PublicIDFromBytes(b.Invitee)
	if err != nil || invitee.Sign != env.To {
		return nil, errors.New("invite code is malformed: invitee")
	}
	inviter, err := identity.PublicIDFromBytes(b.Inviter)
	if err != nil || inviter.Sign != env.Sender {
		return nil, errors.New("invite code is not signed by its inviter")
	}
	if len(b.URLs) == 0 {
		return nil, errors.New("invite code names no member to contact")
	}
	if err := state.CheckRelays(b.Relays); err != nil {
		return nil, fmt.Errorf("invite code is malformed: %w", err)
	}
	return &ParsedInvite{Group: env.Group, GroupName: b.GroupName, Invitee: invitee, Inviter: inviter, URLs: b.URLs,
		Index: b.Index, Expires: time.Unix(0, b.Expires), Relays: b.Relays, Keeper: env.Type == crypto.TypeKeeper}, nil
}

// notInviteChar reports whether r is no character of an invite code after
// its prefix (base64url, unpadded).
func notInviteChar(r rune) bool {
	return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_')
}

// Join joins a group through an invite code. It proves to a member that this
// node holds the invited key (by signing the member's challenge), waits for
// the join to be committed, and returns once this node has caught up with the
// group's log.
func (n *Node) Join(ctx context.Context, code string) (GroupInfo, error) {
	inv, err := ParseInvite(code)
	if err != nil {
		return GroupInfo{}, fmt.Errorf("join: %v: %w", err, ErrInvalid)
	}
	if inv.Invitee != n.self {
		return GroupInfo{}, fmt.Errorf("join: this invite is for %s, not for this node (%s); send the inviter this node's public id (demes id) and ask for an invite to it: %w", inv.Invitee.Fingerprint(), n.self.Fingerprint(), ErrInvalid)
	}
	if time.Now().After(inv.Expires) {
		return GroupInfo{}, fmt.Errorf("join: this invite expired on %s; ask for a new one: %w", inv.Expires.Format("2006-01-02 15:04 MST"), ErrInvalid)
	}
	if n.cfg.Keeper && !inv.Keeper {
		// A keeper reads nothing: joining as a member, it would be sealed
		// every sender key.
		return GroupInfo{}, fmt.Errorf("join: this node is a keeper and joins only as one; ask an admin of the group to add it with 'demes keeper add': %w", ErrForbidden)
	}
	// A node that holds the group already is a member (nothing to do), or
	// one that left or was removed and is invited back: it asks to join like
	// anyone, and its log, a prefix of the group's, then grows from where
	// it stopped.
	n.joining.Add(1)
	defer n.joining.Add(-1)
	existing := n.group(inv.Group)
	if existing != nil && existing.view.Load().self {
		return GroupInfo{GroupID: existing.id.String(), Name: existing.view.Load().name}, nil
	}
	defer n.useInviteRelays(ctx, inv)()
	var (
		reply     *joinReply
		lastErr   error
		start     = time.Now()
		answered  bool                  // some member answered a challenge
		stalled   bool                  // some member took a join request and did not answer it in time
		uncommit  string                // a member that answered it could not commit the join in time
		logged    = map[string]bool{}   // members whose failure was logged at info
		refusedBy = map[string]string{} // members that refused what this node says about itself, and why
	)
	// The members are asked until one adds this node, or for
	// cfg.JoinGiveUp: then the reason is said, before whoever waits for
	// this join gives up on it without one.
	askCtx, cancelAsk := context.WithTimeout(ctx, n.cfg.JoinGiveUp)
	defer cancelAsk()
	gaveUp := func() error {
		if !answered {
			return fmt.Errorf("join: no member of the group answers at %s (%s); ask the inviter to start their node (demes serve), or ask a member who is online for a new invite: %w",
				strings.Join(inv.URLs, ", "), noAnswerWhy(lastErr), ErrUnreachable)
		}
		if uncommit != "" {
			return fmt.Errorf("join: the group could not commit this node's join in time (the member at %s took the join and answered that it could not commit it): the group cannot commit now, most likely because most of its members are offline; run the same join again once more of them are online (the invite is valid until %s): %w",
				uncommit, inv.Expires.Format("2006-01-02 15:04 MST"), ErrUnreachable)
		}
		if !stalled {
			return fmt.Errorf("join: no member of the group added this node within %v: %v; ask the inviter for a new invite: %w",
				n.cfg.JoinGiveUp.Round(time.Second), lastErr, ErrUnreachable)
		}
		return fmt.Errorf("join: the group's members answer, but none could add this node within %v: the group cannot commit now (most likely a majority of its voters is offline); run the same join again once more of its members are online: %w",
			n.cfg.JoinGiveUp.Round(time.Second), ErrUnreachable)
	}
	for reply == nil {
		for i, url := range inv.URLs {
			reply, lastErr = n.tryJoin(askCtx, inv, url)
			if reply != nil {
				break
			}
			if errors.Is(lastErr, errJoinStalled) {
				answered, stalled = true, true
			}
			if errors.Is(lastErr, errJoinNotCommitted) {
				answered, uncommit = true, url
			}
			// A member refused what this node says about itself. The
			// inviter's word is final, as for a refused challenge
			// below; another member's is not, by itself: a member
			// that answers so to every joiner must not stop a join
			// that the others would take.
			var jr joinRefusedError
			if errors.As(lastErr, &jr) {
				refusedBy[url] = jr.why
				if i == 0 || len(refusedBy) == len(inv.URLs) {
					return GroupInfo{}, fmt.Errorf("join: the member at %s refused this node's join: %s; start this node with a shorter display name or peer address (demes serve --name, --advertise) and run the same join again: %w", url, jr.why, ErrInvalid)
				}
			}
			if askCtx.Err() != nil {
				if ctx.Err() != nil {
					return GroupInfo{}, fmt.Errorf("join: no member of the group accepted the join: %v", lastErr)
				}
				return GroupInfo{}, gaveUp()
			}
			if !errors.Is(lastErr, errNoAnswer) {
				answered = true
			}
			// The first failure of each member at info, the retries (two
			// a second) at debug: the cause does not change.
			ev := n.log.Debug()
			if !logged[url] {
				logged[url] = true
				ev = n.log.Info()
			}
			ev.Err(lastErr).Str("member", url).Msg("join attempt failed")
			// The first URL is the inviter's, which committed the invite
			// before it made the code: when it refuses the challenge, the
			// invite is no longer open there, and asking again will not
			// open it.
			if i == 0 && errors.Is(lastErr, errChallengeRefused) {
				return GroupInfo{}, fmt.Errorf("join: the inviter's node refused this invite (it was revoked or used, or its inviter left or may no longer invite); ask the inviter for a new one: %w", ErrForbidden)
			}
		}
		if reply != nil {
			break
		}
		// Nobody at any of the invite's addresses answers: waiting longer
		// than a restart takes will not help, and the person should hear
		// why rather than wait for a timeout that blames their own node.
		if !answered && time.Since(start) >= joinGiveUpAfter {
			return GroupInfo{}, gaveUp()
		}
		select {
		case <-askCtx.Done():
			if ctx.Err() != nil {
				return GroupInfo{}, fmt.Errorf("join: no member of the group accepted the join: %v", lastErr)
			}
			return GroupInfo{}, gaveUp()
		case <-time.After(joinRetryInterval):
		}
	}
	g := existing
	if g == nil {
		if g, err = n.startJoined(inv.Group, reply); err != nil {
			return GroupInfo{}, fmt.Errorf("join: %w", err)
		}
	}
	if err := g.waitView(ctx, func(v *view) bool { return v.self && v.applied >= reply.Commit }); err != nil {
		return GroupInfo{}, fmt.Errorf("join: catching up with the group's log: %w", err)
	}
	// The log, which starts at the genesis the group id is derived from,
	// must show the inviter as a member where the invite says it invited.
	var invited bool
	if err := g.do(ctx, func() { invited = inviterAt(g.st, inv.Inviter, inv.Index, g.hasFrameAt(inv.Index)) }); err != nil {
		return GroupInfo{}, fmt.Errorf("join: %w", err)
	}
	if !invited {
		return GroupInfo{}, fmt.Errorf("join: the group's log does not show %s inviting at position %d, as the invite says; this invite was not made in this group", inv.Inviter.Fingerprint(), inv.Index)
	}
	n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	return GroupInfo{GroupID: g.id.String(), Name: reply.Name}, nil
}

// startJoined stores and starts a group this node has just joined, trusting
// the join reply's member list until its own log names the members.
func (n *Node) startJoined(gid crypto.GroupID, reply *joinReply) (*group, error) {
	// Two joins of one group may run at once (Join twice, a retry while
	// the first still waits): the second to get here takes the first's
	// group rather than start a second raft over the same store.
	n.startMu.Lock()
	defer n.startMu.Unlock()
	if g := n.group(gid); g != nil {
		return g, nil
	}
	info := groupInfo{Name: reply.Name}
	for _, m := range reply.Members {
		id, err := identity.PublicIDFromBytes(m.PublicID)
		if err != nil {
			continue
		}
		info.Provisional = append(info.Provisional, provisionalMember{PublicID: id.String(), URL: m.URL, Voter: m.Voter})
	}
	if err := n.store.CreateGroup(gid[:], encodeGroupInfo(info)); err != nil {
		return nil, err
	}
	g, err := n.startGroup(gid, info, nil, info.Provisional)
	if err != nil {
		return nil, err
	}
	if err := n.register(g); err != nil {
		return nil, fmt.Errorf("join group %s: %w", gid, err)
	}
	n.pokeRelays() // its first view may have come before it was listed
	return g, nil
}

// register lists g, started, among the node's groups, unless the node is
// closing: Close stops the groups it lists, and waits for every group's
// goroutine, so a group started while it runs (a join that ends then, a
// keeper's join resumed at a start) and listed after it took the list would
// run on, and Close would wait for it forever. Such a group is stopped
// instead; its store is left as it is, to be started again with the node.
func (n *Node) register(g *group) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		g.stop()
		return fmt.Errorf("the node is stopping: %w", ErrStopped)
	}
	n.groups[g.id] = g
	n.mu.Unlock()
	return nil
}

// inviterAt reports whether the log behind st, which has an entry with a
// frame at index if entry is set, shows inviter as a member there.
func inviterAt(st *state.State, inviter identity.PublicID, index uint64, entry bool) bool {
	m := st.MemberOrFormer(inviter.Sign)
	if !entry || m == nil || m.ID != inviter {
		return false
	}
	return m.JoinedAt < index && (m.LeftAt == 0 || m.LeftAt > index)
}

func (n *Node) tryJoin(ctx context.Context, inv *ParsedInvite, url string) (*joinReply, error) {
	cctx, cancel := context.WithTimeout(ctx, challengeTimeout)
	defer cancel()
	frame, err := n.sign(&crypto.Envelope{Type: crypto.TypeChallenge, Group: inv.Group})
	if err != nil {
		return nil, err
	}
	resp, err := n.cfg.Link.Post(cctx, url, frame)
	if err != nil {
		switch {
		case refused(err):
			err = fmt.Errorf("%w: %v", errChallengeRefused, err)
		case unanswered(err) && ctx.Err() == nil:
			err = fmt.Errorf("%w: %w", errNoAnswer, err)
		}
		return nil, fmt.Errorf("challenge: %w", err)
	}
	ch, err := crypto.Verify(resp)
	if err != nil || ch.Type != crypto.TypeChallenge || ch.To != n.self.Sign || len(ch.Payload) != 32 {
		return nil, errors.New("challenge: malformed answer")
	}
	body, err := state.Encode(&state.JoinBody{PublicID: n.self.Bytes(), RaftID: state.RaftID(n.self.Sign), Name: n.cfg.Name, URL: n.URL(), Nonce: ch.Payload})
	if err != nil {
		return nil, err
	}
	jframe, err := n.sign(&crypto.Envelope{Type: crypto.TypeJoin, Group: inv.Group, Payload: body})
	if err != nil {
		return nil, err
	}
	// The member waits joinCommitTimeout for the join to commit, and
	// this request waits longer, so that the member's answer arrives
	// (over HTTP, past the link's usual cap: joinLinkCap).
	jctx, jcancel := context.WithTimeout(withLinkCap(ctx, joinLinkCap), joinRequestTimeout)
	defer jcancel()
	resp, err = n.cfg.Link.Post(jctx, url, jframe)
	if err != nil {
		var ne net.Error
		switch {
		case notCommitted(err):
			err = fmt.Errorf("%w: %w", errJoinNotCommitted, err)
		case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded):
			// The member took the join and gave no answer before
			// this request's deadline (or the join's JoinGiveUp):
			// most likely it could not commit the join either.
			err = fmt.Errorf("%w: %w", errJoinStalled, err)
		}
		return nil, fmt.Errorf("join request: %w", err)
	}
	renv, err := crypto.Verify(resp)
	if err != nil || renv.Type != crypto.TypeJoinReply || renv.To != n.self.Sign || renv.Group != inv.Group {
		return nil, errors.New("join request: malformed answer")
	}
	var r joinReply
	if err := state.Decode(renv.Payload, &r); err != nil {
		return nil, fmt.Errorf("join request: malformed answer: %w", err)
	}
	signerListed := false
	for _, m := range r.Members {
		if id, err := identity.PublicIDFromBytes(m.PublicID); err == nil && id.Sign == renv.Sender {
			signerListed = true
		}
	}
	if !signerListed {
		return nil, errors.New("join request: answered by a non-member")
	}
	return &r, nil
}
