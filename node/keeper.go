package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

// Keepers (issue 18; docs/PROTOCOL.md, "Keepers"). A keeper is an
// always-on node that holds a group's log and votes, so that a small group
// keeps committing while some of its people are offline, but holds no group
// key: members never seal a sender key to it (state.State.Recipients leaves
// keepers out), and the state machine refuses its chat messages and every
// entry about the membership. A node run with Config.Keeper (`demes serve
// --keeper`) is one: it never opens a message, refuses to create groups,
// send or invite, and joins groups an admin adds it to.

// IDPath is the peer listener's route that answers the node's public id
// (GET), so that an admin can add a keeper by its address.
const IDPath = "/v1/id"

// KeeperPath is the peer listener's route where a keeper takes the invite
// code of a group an admin adds it to (POST, the code as the body).
const KeeperPath = "/v1/keeper"

// maxKept bounds how many groups a keeper joins by codes posted to it, and
// keeperJoinTimeout how long it tries each.
const (
	maxKept           = 100
	keeperJoinTimeout = 2 * time.Minute
)

// errKeeper is what a keeper answers to what only members do.
var errKeeper = fmt.Errorf("this node is a keeper: it holds groups' logs for their members and reads and sends nothing (run demes serve without --keeper for a node of your own): %w", ErrForbidden)

// AddKeeper adds a keeper to the group: target is the keeper's public id or
// its peer URL. It commits a keeper invite (admins only) and returns its
// code and the keeper's public id. Given a URL, it asks the keeper there
// for its id first and hands it the code, and the keeper joins by itself;
// given an id, the keeper's operator joins with the code (`demes join`).
//
// want, with a URL, is the public id the admin knows the keeper by: the
// node at the URL must answer it, or nothing is committed. The id comes
// over plain HTTP, and without want whoever answers at the URL (on the
// path to it, or holding its port while the keeper is down) would be
// added as the keeper, a voter.
func (n *Node) AddKeeper(ctx context.Context, groupID, target, want string) (code, keeper string, err error) {
	if n.cfg.Keeper {
		return "", "", errKeeper
	}
	g, err := n.groupByText(groupID)
	if err != nil {
		return "", "", err
	}
	if !g.view.Load().admin {
		return "", "", fmt.Errorf("add keeper: only admins may add a keeper: %w", ErrForbidden)
	}
	url := ""
	id, perr := identity.ParsePublicID(target)
	if perr == nil && want != "" {
		return "", "", fmt.Errorf("add keeper: give the keeper's id with its peer URL, not with its id: %w", ErrInvalid)
	}
	if perr != nil {
		if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
			return "", "", fmt.Errorf("add keeper: %q is neither a public id (demes1...) nor a peer URL (http://...): %w", target, ErrInvalid)
		}
		url = strings.TrimRight(target, "/")
		var wantID identity.PublicID
		if want != "" {
			if wantID, err = identity.ParsePublicID(want); err != nil {
				return "", "", fmt.Errorf("add keeper: the keeper's id: %v: %w", err, ErrInvalid)
			}
		}
		if id, err = n.askID(ctx, url); err != nil {
			return "", "", err
		}
		if want != "" && id != wantID {
			return "", "", fmt.Errorf("add keeper: the node at %s answers as %s, not as the keeper you named (%s), and nothing was committed; check the keeper's address with its operator (someone else may answer there): %w",
				url, id.Fingerprint(), wantID.Fingerprint(), ErrForbidden)
		}
		// Before anything is committed: an invite for a node that is no
		// keeper would be left open, with its code handed to nobody
		// (helper-58's QA pass).
		switch probeKeeper(ctx, url, n.self) {
		case probeNotKeeper:
			return "", "", fmt.Errorf("add keeper: the node at %s is not a keeper, and nothing was committed; its operator runs it with demes serve --keeper (or add a member with demes invite): %w", url, ErrInvalid)
		case probeNotForYou:
			return "", "", fmt.Errorf("add keeper: the keeper at %s keeps groups only for the people its operator named (demes serve --keep-for), not for you, and nothing was committed; ask its operator to add your public id: %w", url, ErrForbidden)
		}
	}
	if err := n.refuseKeeperWhenStuck(ctx, g); err != nil {
		return "", "", err
	}
	code, err = n.invite(ctx, groupID, id.String(), 0, crypto.TypeKeeper)
	if err != nil {
		return "", "", err
	}
	if url != "" {
		if err := n.offerKeeper(ctx, url, code); err != nil {
			return code, id.String(), err
		}
	}
	return code, id.String(), nil
}

// refuseKeeperWhenStuck fails a keeper add at once, with nothing proposed,
// when the group cannot commit (no host, a majority of its voters
// offline), waiting as an invite does (whileHostless) for this run of the
// group to know. A keeper's invite is not queued (keeper add hands
// the keeper its code, or fails): without this it waited out the commit
// timeout, 30 s, and failed with "not committed in time (does the group
// have a host?): context deadline exceeded".
func (n *Node) refuseKeeperWhenStuck(ctx context.Context, g *group) error {
	var stuck bool
	var voters, online int
	if err := n.whileHostless(ctx, g, func() bool {
		if stuck = g.stuckFor(time.Now()); stuck {
			voters, online = g.votersOnline(time.Now())
		}
		return stuck
	}); err != nil {
		return fmt.Errorf("add keeper: %w", err)
	}
	if stuck {
		return fmt.Errorf("add keeper: the group cannot commit now (%d of %d voters offline), and nothing was committed; run the same 'demes keeper add' again once enough of the group is online: %w",
			voters-online, voters, ErrUnreachable)
	}
	return nil
}

// askID asks the node at url for its public id.
func (n *Node) askID(ctx context.Context, url string) (identity.PublicID, error) {
	body, err := peerCall(ctx, http.MethodGet, url+IDPath, "")
	if err != nil {
		if errors.Is(err, ErrUnreachable) {
			// The part after "; " is the API answer's hint.
			why := strings.TrimSuffix(err.Error(), ": "+ErrUnreachable.Error())
			return identity.PublicID{}, fmt.Errorf("add keeper: ask %s for its id: %s; check that the keeper's demes serve runs and that this is its peer address (its --listen or --advertise): %w", url, why, ErrUnreachable)
		}
		return identity.PublicID{}, fmt.Errorf("add keeper: ask %s for its id: %w", url, err)
	}
	id, err := identity.ParsePublicID(strings.TrimSpace(body))
	if err != nil {
		return identity.PublicID{}, fmt.Errorf("add keeper: %s answered no public id: %v: %w", url, err, ErrInvalid)
	}
	return id, nil
}

// What a keeper's probe (GET KeeperPath) answered.
const (
	probeKept      = iota // a keeper that keeps this admin's groups, or an answer that says nothing
	probeNotKeeper        // 403: not a keeper
	probeNotForYou        // 403 notKeptForBody: a keeper, not for this admin
)

// notKeptForBody is what a keeper run with --keep-for answers a probe
// for an admin it does not keep groups for.
const notKeptForBody = "this keeper does not keep groups for you"

// probeKeeper asks the node at url whether it is a keeper that keeps the
// groups of admin (the query "for": anyone may learn this by posting a
// code of a group of their own, so the answer gives nothing away). Any
// answer but a 403, an older node's included, says nothing, and the offer
// itself then tells.
func probeKeeper(ctx context.Context, url string, admin identity.PublicID) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+KeeperPath+"?for="+admin.String(), nil)
	if err != nil {
		return probeKept
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return probeKept
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		return probeKept
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if strings.TrimSpace(string(b)) == notKeptForBody {
		return probeNotForYou
	}
	return probeNotKeeper
}

// handleKeeperProbe answers GET KeeperPath: 204 from a keeper, 403 from
// any other node, so that an admin's node asks before it commits a keeper
// invite; and 403 notKeptForBody from a keeper that does not keep the
// groups of the admin the query "for" names.
func (n *Node) handleKeeperProbe(w http.ResponseWriter, req *http.Request) {
	if !n.cfg.Keeper {
		http.Error(w, "not a keeper", http.StatusForbidden)
		return
	}
	if f := req.URL.Query().Get("for"); f != "" {
		if pub, err := identity.ParsePublicID(f); err == nil && !n.keepsFor(pub.Sign) {
			http.Error(w, notKeptForBody, http.StatusForbidden)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// offerKeeper hands a keeper invite code to the keeper at url.
func (n *Node) offerKeeper(ctx context.Context, url, code string) error {
	if _, err := peerCall(ctx, http.MethodPost, url+KeeperPath, code); err != nil {
		return fmt.Errorf("add keeper: the invite is committed, but handing its code to %s failed (%w); its operator can join with the code", url, err)
	}
	return nil
}

// peerCall makes one plain HTTP call to another node's peer listener and
// returns the body of a 2xx answer.
func peerCall(ctx context.Context, method, url, body string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// In words, not Go's `Get "http://...": dial tcp ...: connect:
		// connection refused`; the log keeps the whole error.
		return "", fmt.Errorf("%s: %w", noAnswerWhy(err), ErrUnreachable)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("it answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// keeperJoins counts the joins a keeper runs for codes posted to it.
type keeperJoins struct {
	running atomic.Int32
}

// handleKeeperOffer is a keeper's side of AddKeeper: it checks the code is
// a keeper-able invite for this node and joins in the background.
func (n *Node) handleKeeperOffer(w http.ResponseWriter, req *http.Request) {
	if !n.cfg.Keeper {
		http.Error(w, "not a keeper", http.StatusForbidden)
		return
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read the code", http.StatusBadRequest)
		return
	}
	code := strings.TrimSpace(string(b))
	inv, err := ParseInvite(code)
	if err != nil || inv.Invitee != n.self {
		n.countReject("keeper offer refused", "refused a keeper offer: not an invite code for this node")
		http.Error(w, "not an invite for this node", http.StatusBadRequest)
		return
	}
	if !n.keepsFor(inv.Inviter.Sign) {
		n.countReject("keeper offer refused", "refused a keeper offer: its inviter is none of the people this keeper keeps groups for (--keep-for)")
		http.Error(w, "this keeper keeps groups only for the people its operator named (demes serve --keep-for)", http.StatusForbidden)
		return
	}
	if len(n.sortedGroups()) >= maxKept || !n.kept.running.CompareAndSwap(0, 1) {
		http.Error(w, "this keeper keeps as many groups as it takes", http.StatusServiceUnavailable)
		return
	}
	// On disk before the answer, which tells the admin that the keeper
	// joins by itself: a keeper that crashes before its join is done
	// joins once it is back (resumeKeeperOffer).
	if err := n.store.SavePref(prefKeeperOffer, []byte(code)); err != nil {
		n.kept.running.Add(-1)
		n.log.Error().Err(err).Msg("keeper: cannot keep the code of the group an admin added this node to")
		http.Error(w, "cannot store the code", http.StatusInternalServerError)
		return
	}
	n.keeperJoin(code)
	w.WriteHeader(http.StatusAccepted)
}

// keepsFor reports whether this keeper takes a keeper code that inviter
// made (Config.KeepFor). The code is signed by its inviter (ParseInvite
// checks it), so a stranger cannot pass for one of them.
func (n *Node) keepsFor(inviter [32]byte) bool {
	if len(n.cfg.KeepFor) == 0 {
		return true
	}
	for _, k := range n.cfg.KeepFor {
		if k == inviter {
			return true
		}
	}
	return false
}

// prefKeeperOffer is the name in the store's preferences of the code a
// keeper took and has not finished joining with (empty: none).
const prefKeeperOffer = "keeper_offer"

// keeperJoin joins with code, a keeper's offer stored under
// prefKeeperOffer, from its own goroutine; kept.running is 1 already. The
// stored code is forgotten once the join is over, unless the node stops
// meanwhile: it joins again at its next start.
func (n *Node) keeperJoin(code string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.kept.running.Add(-1)
		ctx, cancel := context.WithTimeout(n.ctx, keeperJoinTimeout)
		defer cancel()
		info, err := n.Join(ctx, code)
		if n.ctx.Err() != nil {
			return // stopped (or crashed): joined again at the next start
		}
		if err := n.store.SavePref(prefKeeperOffer, nil); err != nil {
			n.log.Error().Err(err).Msg("keeper: cannot forget the code of a join that is over")
		}
		if err != nil {
			n.log.Warn().Err(err).Msg("keeper: cannot join the group an admin added this node to")
		} else {
			n.log.Info().Str("group", info.GroupID).Msg("keeper: keeping the group an admin added this node to")
		}
	}()
}

// resumeKeeperOffer joins, at a keeper's start, with the code it took
// before it stopped and had not finished joining with.
func (n *Node) resumeKeeperOffer() {
	code, err := n.store.Pref(prefKeeperOffer)
	if err != nil {
		n.log.Error().Err(err).Msg("keeper: cannot read the code of an unfinished join")
		return
	}
	if len(code) == 0 || !n.cfg.Keeper || !n.kept.running.CompareAndSwap(0, 1) {
		return
	}
	n.log.Info().Msg("keeper: joining again the group an admin added this node to before it stopped")
	n.keeperJoin(string(code))
}
