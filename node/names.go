package node

import (
	"github.com/demes/demes/api"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/names"
)

// Shared display names. A member chooses its display name, so an impostor
// can join a group as "alice" beside the real alice, and a reader who goes
// by names cannot tell whose message is whose. The node marks every member
// (and former member, whose messages and joins are still shown) whose name
// a person would not tell apart from another's, and the CLI and the UI
// show the fingerprint beside such a name, as Signal flags a name conflict.
// Which names those are is package names' to say (internal/names).

// namesakes are the members and former members of a group whose display
// name looks like another's: their fingerprints, by public id (the text a
// Message's Author holds). It is never changed once made, so views share
// it between goroutines.
type namesakes map[string]string

// namesakesOf returns the namesakes among ids and their display names.
func namesakesOf(byID map[identity.PublicID]string) namesakes {
	shared := names.Shared(byID)
	if len(shared) == 0 {
		return nil
	}
	out := make(namesakes, len(shared))
	for id := range shared {
		out[id.String()] = id.Fingerprint()
	}
	return out
}

// mark sets m's NameShared and AuthorFingerprint when its author is one of
// ns.
func (ns namesakes) mark(m *Message) {
	if fp, ok := ns[m.Author]; ok {
		m.NameShared, m.AuthorFingerprint = true, fp
	}
}

// label is how a name of the member id is shown where the API has no flag
// beside it (an invite's inviter, who removed this node, the members
// without a prekey): the name, with the fingerprint after it when the
// member is one of ns (helper-58's QA pass: a lookalike "alice" invited
// and removed with nothing to tell it apart).
func (ns namesakes) label(id, name string) string {
	if fp, ok := ns[id]; ok && name != "" {
		return name + " (" + fp + ")"
	}
	return name
}

// memberLabel is how the member with signing key k is named in words the
// node writes for a person (an alert, a reform's names): its display name
// labelled as by label, or its fingerprint when it has none. ok is false
// when v does not hold k (a former member, or no member at all).
func (v *view) memberLabel(k [32]byte) (id identity.PublicID, name string, ok bool) {
	m, ok := v.members[k]
	if !ok {
		return identity.PublicID{}, "", false
	}
	if m.name == "" {
		return m.id, m.id.Fingerprint(), true
	}
	return m.id, v.namesakes.label(m.id.String(), m.name), true
}

// markAll marks each of ms (see mark).
func (ns namesakes) markAll(ms []Message) {
	if len(ns) == 0 {
		return
	}
	for i := range ms {
		ns.mark(&ms[i])
	}
}

// markEvents sets NameShared and Fingerprint on each of evs whose member
// is one of ns.
func (ns namesakes) markEvents(evs []api.MemberEvent) {
	for i := range evs {
		if fp, ok := ns[evs[i].Member]; ok {
			evs[i].NameShared, evs[i].Fingerprint = true, fp
		}
	}
}

// namesakes returns the group's namesakes by its state: its members and
// former members. Names change only with the members (a join, or a rejoin
// under another name), each of which starts a new membership epoch, so it
// is computed once per epoch. Run's goroutine only.
func (g *group) namesakes() namesakes {
	if !g.namesOK || g.namesEpoch != g.st.Epoch {
		byID := make(map[identity.PublicID]string, len(g.st.Members)+len(g.st.Former))
		for _, m := range g.st.Former {
			byID[m.ID] = m.Name
		}
		for _, m := range g.st.Members {
			byID[m.ID] = m.Name
		}
		g.names, g.namesEpoch, g.namesOK = namesakesOf(byID), g.st.Epoch, true
	}
	return g.names
}

// publishMessage tells the subscribers about m, a message of the group, as
// the group's state names its author now. Run's goroutine only.
func (g *group) publishMessage(m Message) {
	g.namesakes().mark(&m)
	g.n.events.publish(Event{Kind: "message", GroupID: g.id.String(), Message: &m})
}
