package node

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/state"
)

// Reform continues the group groupID, halted on this node after a fork, in
// a successor group without one member (see reform.go): the member req
// names, or else the one this node's proof names (the host when known,
// else the member whose history differed). It joins the successor another
// member offered this node when it can (the lowest id among those whose
// history matches this node's), answers the successor this node is in
// already when there is one, and otherwise starts one and invites every
// other member. A group that is not halted, a member to leave out who is
// not in the group, or this node itself, is an [ErrInvalid] and changes
// nothing.
func (n *Node) Reform(ctx context.Context, groupID string, req api.ReformRequest) (api.ReformResult, error) {
	if n.cfg.Keeper {
		return api.ReformResult{}, errKeeper
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return api.ReformResult{}, err
	}
	if err := g.waitView(ctx, func(v *view) bool { return v.replayed }); err != nil {
		return api.ReformResult{}, fmt.Errorf("reform: %w", err)
	}
	v := g.view.Load()
	if v.fork == nil {
		return api.ReformResult{}, fmt.Errorf("reform: group %q is not halted: a group is continued without a member only after your node found its history forked (its status then shows the fork): %w", v.name, ErrInvalid)
	}
	if !v.self {
		return api.ReformResult{}, fmt.Errorf("reform: this node is not a member of group %q: %w", v.name, ErrInvalid)
	}
	var without identity.PublicID
	if s := strings.TrimSpace(req.Without); s != "" {
		if without, err = identity.ParsePublicID(s); err != nil {
			return api.ReformResult{}, fmt.Errorf("reform: the member to leave out: %v: %w", err, ErrInvalid)
		}
		if without == n.self {
			return api.ReformResult{}, fmt.Errorf("reform: you cannot leave yourself out of the group you continue: %w", ErrInvalid)
		}
		if _, ok := v.members[without.Sign]; !ok {
			return api.ReformResult{}, fmt.Errorf("reform: %s is not a member of group %q: %w", without.Fingerprint(), v.name, ErrInvalid)
		}
	}
	var best *offer
	var refused []api.SuccessorOffer
	for _, o := range n.offersFor(g.id) {
		if p := n.offerProblem(v, o, without); p != "" {
			refused = append(refused, api.SuccessorOffer{GroupID: o.succ.group.String(), Continues: n.continuation(o.succ, v), Problem: p})
		} else if best == nil {
			best = o // the lowest id: offersFor sorts them
		}
	}
	here := n.successorsHere(g.id)
	if len(here) > 0 && (best == nil || !lessID(best.succ.group, here[0].id)) {
		return n.reformResult(here[0], api.ReformAlready, v, nil, refused), nil
	}
	if best != nil {
		if _, err := n.Join(ctx, best.code); err != nil {
			return api.ReformResult{}, fmt.Errorf("reform: join the successor %s started: %w", memberName(v, best.succ.creator), err)
		}
		n.noteContinuation(best.succ.group, best.succ)
		s := n.group(best.succ.group)
		if s == nil {
			return api.ReformResult{}, fmt.Errorf("reform: the successor %s is not on this node after its join: %w", best.succ.group, ErrStopped)
		}
		n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
		return n.reformResult(s, api.ReformJoined, v, nil, refused), nil
	}
	return n.startSuccessor(ctx, g, v, without, refused, nil)
}

// startSuccessor starts a successor of halted group g (view v) without
// member without (zero: the one g's proof names), invites the other
// members and offers it to them. forge, when not nil, changes the
// continuation before it is signed (only the adversary suite's hook,
// rogue.go, passes one).
func (n *Node) startSuccessor(ctx context.Context, g *group, v *view, without identity.PublicID, refused []api.SuccessorOffer, forge func(*state.Continuation)) (api.ReformResult, error) {
	if without.IsZero() {
		s := suspectOf(v.fork, n.selfID)
		if s == "" {
			return api.ReformResult{}, fmt.Errorf("reform: your node's proof of the fork names no member to leave out (%s); name the one to leave out: %w", v.fork.Message, ErrInvalid)
		}
		var err error
		if without, err = identity.ParsePublicID(s); err != nil {
			return api.ReformResult{}, fmt.Errorf("reform: the member to leave out: %w", err)
		}
	}
	// The continuation point: the latest index through which every member
	// to invite that this node heard from signed this node's head there,
	// so that each of them finds its own history in it.
	var (
		idx      uint64
		head     [32]byte
		invitees []identity.PublicID
	)
	if err := g.do(ctx, func() {
		idx = g.st.Applied
		for k, m := range g.st.Members {
			if k == n.self.Sign || k == without.Sign || m.Keeper {
				continue
			}
			invitees = append(invitees, m.ID)
			if c, ok := g.heard[k]; ok {
				idx = min(idx, c.index)
			}
		}
		head, _ = g.st.HeadThrough(idx)
	}); err != nil {
		return api.ReformResult{}, fmt.Errorf("reform: %w", err)
	}
	if idx == 0 {
		return api.ReformResult{}, fmt.Errorf("reform: group %q has no history on this node to continue: %w", v.name, ErrInvalid)
	}
	sort.Slice(invitees, func(i, j int) bool { return invitees[i].Compare(invitees[j]) < 0 })
	cont := state.Continuation{Group: g.id[:], Index: idx, Head: head[:], Without: without.Bytes()}
	if forge != nil {
		forge(&cont)
	}
	info, err := n.createGroup(ctx, v.name, func(gen state.Genesis) any {
		return &state.SuccessorGenesis{Name: gen.Name, Creator: gen.Creator, RaftID: gen.RaftID, URL: gen.URL,
			Nickname: gen.Nickname, MaxVoters: gen.MaxVoters, Nonce: gen.Nonce, Continues: cont}
	})
	if err != nil {
		return api.ReformResult{}, fmt.Errorf("reform: %w", err)
	}
	s := n.group(mustGroupID(info.GroupID))
	if s == nil {
		return api.ReformResult{}, fmt.Errorf("reform: the successor %s is not on this node: %w", info.GroupID, ErrStopped)
	}
	n.log.Info().Str("group", g.id.String()).Str("successor", info.GroupID).Uint64("index", idx).
		Str("without", without.Fingerprint()).Msg("continuing a halted group in a successor")
	var invited []string
	for _, id := range invitees {
		if _, err := n.InviteFor(ctx, info.GroupID, id.String(), 0); err != nil {
			return api.ReformResult{}, fmt.Errorf("reform: the successor %s is started, but inviting %s failed (invite them with demes invite): %w", info.GroupID, memberName(v, id), err)
		}
		invited = append(invited, memberName(v, id))
	}
	n.offerSuccessors(g, true)
	n.events.publish(Event{Kind: "status", GroupID: g.id.String()})
	return n.reformResult(s, api.ReformStarted, v, invited, refused), nil
}

func mustGroupID(s string) crypto.GroupID {
	gid, _ := crypto.ParseGroupID(s)
	return gid
}

// reformResult is the answer for successor s of the halted group whose
// view is ov.
func (n *Node) reformResult(s *group, action string, ov *view, invited []string, refused []api.SuccessorOffer) api.ReformResult {
	r := api.ReformResult{GroupID: s.id.String(), Name: s.view.Load().name, Action: action, Invited: invited, Refused: refused}
	if c := n.continuationOf(s); c != nil {
		r.Continues = n.continuation(c, ov)
	}
	return r
}

// offerSuccessors sends the successors this node started of halted group g
// to each member invited to one that has not joined it yet, at most every
// offerEvery unless force. A successor with a higher id than one this node
// could join itself is no longer offered: the lowest wins (reform.go).
// Safe from any goroutine; it sends from goroutines of its own.
func (n *Node) offerSuccessors(g *group, force bool) {
	v := g.view.Load()
	if v.fork == nil || !v.self {
		return
	}
	b, now := &n.reform, time.Now()
	b.mu.Lock()
	if !force && now.Sub(b.offered[g.id]) < offerEvery {
		b.mu.Unlock()
		return
	}
	if b.offered == nil {
		b.offered = map[crypto.GroupID]time.Time{}
	}
	b.offered[g.id] = now
	b.mu.Unlock()
	var lowest *crypto.GroupID
	for _, o := range n.offersFor(g.id) {
		if n.offerProblem(v, o, identity.PublicID{}) == "" {
			lowest = &o.succ.group
			break
		}
	}
	for _, s := range n.successorsHere(g.id) {
		c := n.continuationOf(s)
		if c == nil || c.creator != n.self || (lowest != nil && lessID(*lowest, s.id)) {
			continue
		}
		sv := s.view.Load()
		for k, inv := range sv.invites {
			m, ok := v.members[k]
			if _, joined := sv.members[k]; !ok || joined || m.url == "" || inv.Keeper || time.Unix(0, inv.Expires).Before(now) {
				continue
			}
			frame, err := n.offerFrame(g.id, s.id, sv, c, inv)
			if err != nil {
				n.log.Warn().Err(err).Str("group", g.id.String()).Msg("cannot make a successor offer")
				continue
			}
			url := m.url
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				ctx, cancel := context.WithTimeout(n.ctx, peerRequestTimeout)
				defer cancel()
				if _, err := n.cfg.Link.Post(ctx, url, frame); err != nil {
					n.log.Debug().Err(err).Str("member", url).Msg("successor offer not taken")
				}
			}()
		}
	}
}

// offerFrame signs the offer of successor sid (view sv, continuation c) to
// the invitee of inv, in halted group old.
func (n *Node) offerFrame(old, sid crypto.GroupID, sv *view, c *successorOf, inv state.Invite) ([]byte, error) {
	code, err := n.inviteCode(sid, sv, inv.Invitee, inv)
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(code, InvitePrefix))
	if err != nil {
		return nil, err
	}
	payload, err := state.Encode(&successorOffer{Genesis: c.genesis, Invite: raw})
	if err != nil {
		return nil, err
	}
	return n.sign(&crypto.Envelope{Type: crypto.TypeSuccessor, Group: old, To: inv.Invitee.Sign, Payload: payload})
}
