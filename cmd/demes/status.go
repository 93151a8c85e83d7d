package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/demes/demes/api"
)

// runStatus shows the node and its groups: who hosts each, in which term, and
// the members with their role, reachability and round-trip time.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("status [--json]", stdout, "print the node's status as JSON (public_id, groups with host, term, preference, members)", false)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	st, err := c.status(ctx)
	if err != nil {
		return err
	}
	if *f.json {
		if st.Groups == nil {
			st.Groups = []api.GroupStatus{}
		}
		return writeJSON(stdout, st)
	}
	return printStatus(stdout, st)
}

// printStatus writes the readable summary of `demes status`.
func printStatus(w io.Writer, st api.Status) error {
	tw := newTable(w)
	me := authorName(st.Name, st.PublicID)
	fmt.Fprintf(tw, "node\t%s\n", clean(me, " "))
	fmt.Fprintf(tw, "public id\t%s\n", st.PublicID)
	if st.Fingerprint != "" {
		fmt.Fprintf(tw, "fingerprint\t%s\n", st.Fingerprint)
	}
	if st.PeerURL != "" {
		fmt.Fprintf(tw, "peer url\t%s\n", clean(st.PeerURL, " "))
	}
	if !st.Running {
		fmt.Fprintf(tw, "state\tstopped\n")
	}
	if len(st.Groups) == 0 {
		fmt.Fprintf(tw, "groups\tnone yet (demes group create NAME, or demes join INVITE)\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Reachability != nil {
		fmt.Fprintf(w, "reachable from the internet: %s\n", reachText(*st.Reachability))
	}
	for _, g := range st.Groups {
		fmt.Fprintln(w)
		printGroupStatus(w, g)
	}
	return nil
}

// nobodyOnline reports whether no member but this node is online.
func nobodyOnline(g api.GroupStatus) bool {
	for _, m := range g.Members {
		if !m.Self && m.Online {
			return false
		}
	}
	return len(g.Members) > 1
}

func printGroupStatus(w io.Writer, g api.GroupStatus) {
	names := make(map[string]string, len(g.Members))
	for _, m := range g.Members {
		names[m.PublicID] = clean(sharedName(m.Name, m.PublicID, m.Fingerprint, m.NameShared), " ")
	}
	nameOf := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return clean(authorName("", id), " ")
	}
	host := "none known (no quorum?)"
	if g.Host != "" {
		host = nameOf(g.Host)
	}
	quorum := "yes"
	switch {
	case g.Fork != nil:
		quorum = "no: the group is halted"
	case !g.HasQuorum && g.Waiting != "":
		quorum = "no: " + clean(g.Waiting, " ")
	case !g.HasQuorum:
		quorum = "no: messages reach the members online, and join the group's order when a majority of voters is reachable"
	}
	left := g.Role == "left"
	if left {
		// Not a group it can send to: no host or quorum to look for,
		// and the figures stopped when it left.
		host = "-"
		quorum = "-  (this node no longer follows the group: the figures are from when it left)"
	}
	fmt.Fprintf(w, "group %q (%s)\n", clean(g.Name, " "), g.GroupID)
	if f := g.Fork; f != nil {
		// First, before the figures: nothing else about the group matters
		// as much.
		fmt.Fprintf(w, "  HALTED: %s\n", clean(f.Message, " "))
		fmt.Fprintf(w, "  found %s; the proof is kept in this node's store\n", f.Detected.Local().Format("2006-01-02 15:04:05"))
		printSuccessors(w, g)
	}
	if c := g.Continues; c != nil {
		fmt.Fprintf(w, "  CONTINUES %s: %s\n", c.GroupID, clean(c.Message, " "))
	}
	if c := g.Censorship; c != nil {
		fmt.Fprintf(w, "  SUSPECTED HOST: %s\n", clean(c.Message, " "))
	}
	if k := g.Keys; k != nil {
		fmt.Fprintf(w, "  KEYS: %s\n", clean(k.Message, " "))
	}
	if g.Restored != "" {
		fmt.Fprintf(w, "  RESTORED: %s\n", clean(g.Restored, " "))
	}
	if g.Host == "" && g.Fork == nil && g.Role != "left" && nobodyOnline(g) {
		// After a long absence the others may all have moved: say what
		// brings this node back.
		fmt.Fprintln(w, "  no other member answers: if they moved to new addresses, point this node at one with 'demes reconnect PEER_URL' (or an invite code of the group)")
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "  host\t%s\n", host)
	fmt.Fprintf(tw, "  term\t%d\n", g.Term)
	switch {
	case g.RemovedBy != "":
		fmt.Fprintf(tw, "  this node\tremoved by %s (keeps the history it has)\n", clean(authorName(g.RemovedByName, g.RemovedBy), " "))
	case g.Role != "":
		fmt.Fprintf(tw, "  this node\t%s\n", clean(roleWords(g.Role), " "))
	}
	fmt.Fprintf(tw, "  quorum\t%s\n", quorum)
	fmt.Fprintf(tw, "  committed\t%d\n", g.Committed)
	for _, r := range g.Settings.Relays {
		fmt.Fprintf(tw, "  relay\t%s\n", clean(r, " "))
	}
	switch {
	case g.Role == "left" || g.Fork != nil:
	case g.ForwardSecrecy:
		fmt.Fprintf(tw, "  forward secrecy\tyes: new keys are sealed to every member's prekey\n")
	case len(g.NoPrekey) > 0:
		fmt.Fprintf(tw, "  forward secrecy\tnot yet: new keys are sealed to identity keys until these members publish a prekey: %s\n",
			clean(strings.Join(g.NoPrekey, ", "), " "))
	}
	if g.Queued > 0 {
		fmt.Fprintf(tw, "  queued\t%d in the outbox%s\n", g.Queued, heldText(g))
	}
	if g.Tentative > 0 {
		fmt.Fprintf(tw, "  tentative\t%d from others, not in the group's order yet\n", g.Tentative)
	}
	if len(g.Preference) > 0 && !left {
		pref := make([]string, len(g.Preference))
		for i, id := range g.Preference {
			pref[i] = nameOf(id)
		}
		fmt.Fprintf(tw, "  preference\t%s\n", strings.Join(pref, " > "))
	}
	tw.Flush()

	fmt.Fprintf(w, "  members (%d):\n", len(g.Members))
	tw = newTable(w)
	for _, m := range g.Members {
		role := "learner"
		if m.Voter {
			role = "voter"
		}
		online := "offline"
		if m.Online {
			online = "online"
		}
		rtt := "-"
		if m.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.1f ms", m.RTTMillis)
		}
		var notes []string
		if m.Host || (g.Host != "" && m.PublicID == g.Host) {
			notes = append(notes, "host")
		}
		if m.Admin {
			notes = append(notes, "admin")
		}
		if m.Keeper {
			notes = append(notes, "keeper: keeps the log, reads nothing")
		}
		if m.Self {
			notes = append(notes, "you")
		}
		if m.NameShared {
			// Its fingerprint, in the second column, tells it apart.
			notes = append(notes, "name shared with another member, or can pass for another")
		}
		switch m.Path {
		case "relayed":
			notes = append(notes, "through a relay")
		case "direct":
			notes = append(notes, "direct (libp2p)")
		}
		fp := m.Fingerprint
		if fp == "" {
			fp = authorName("", m.PublicID)
		}
		name := clean(m.Name, " ")
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\n", name, clean(fp, " "), role, online, rtt, strings.Join(notes, ", "))
	}
	tw.Flush()
}

// reachText says in words whether peers on the internet can dial this node
// (what AutoNAT found), and through which relays they reach it otherwise.
func reachText(r api.Reachability) string {
	relays := ""
	if len(r.Relays) > 0 {
		relays = "through relay"
		if len(r.Relays) > 1 {
			relays += "s"
		}
		relays += " " + clean(strings.Join(r.Relays, ", "), " ")
	}
	switch r.State {
	case api.ReachPublic:
		if len(r.Reachable) == 0 {
			return "yes"
		}
		return "yes, at " + clean(strings.Join(r.Reachable, ", "), " ")
	case api.ReachPrivate:
		if relays == "" {
			return "no, and no relay holds a slot for it: members behind other routers cannot reach it (give it one with 'demes serve --relay ADDR')"
		}
		return "no (" + relays + ")"
	}
	s := "not known yet"
	if len(r.Reachable)+len(r.Unreachable)+len(r.Unknown) == 0 {
		// AutoNAT tests public addresses only.
		s += " (no public address of this node is known: peers on the internet tell it the address they see)"
	}
	if relays != "" {
		s += "; meanwhile " + relays
	}
	return s
}

// heldText says, after the count of queued messages, how many of them the
// quota holds back and which quota is in force, or "" when it holds none:
// a person seeing messages queued would otherwise look at the network.
func heldText(g api.GroupStatus) string {
	if g.Held <= 0 {
		return ""
	}
	which := ""
	if g.Held < g.Queued {
		which = fmt.Sprintf(" %d of them", g.Held)
	}
	msgs := "messages"
	if g.Settings.MsgsPerMinute == 1 {
		msgs = "message"
	}
	return fmt.Sprintf(",%s held back by your quota in this group (%d %s a minute, %s a day; 'demes group settings' shows it): they go out by themselves when it allows",
		which, g.Settings.MsgsPerMinute, msgs, mibText(g.Settings.BytesPerDay))
}

// mibText writes a size of at least 1 MiB (a quota's bytes a day) in MiB.
func mibText(n uint64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// roleWords says this node's role in a group (api.GroupStatus.Role, raft's
// names) in the words of the rest of DeMeS: the leader is the host, and a
// candidate stands for host, which happens only while the group has none.
func roleWords(role string) string {
	switch role {
	case "leader":
		return "host"
	case "candidate":
		return "standing for host: the group has no host now"
	case "pre-candidate":
		return "asking the voters whether it may stand for host: the group has no host now"
	}
	return role
}
