package api

// ReformRequest asks to continue a group halted after a fork in a successor
// group (POST [RouteReform]). Without names the member to leave out, by its
// public id; empty, the node leaves out the one its own proof names: the
// host when known, else the member whose signed history differed.
type ReformRequest struct {
	Without string `json:"without,omitempty"`
}

// The actions a reform can end in ([ReformResult] Action).
const (
	// ReformStarted: this node started the successor and invited the
	// other members.
	ReformStarted = "started"
	// ReformJoined: this node joined a successor another member started,
	// whose history it holds.
	ReformJoined = "joined"
	// ReformAlready: this node was a member of the successor already.
	ReformAlready = "already"
)

// ReformResult is the answer to a reform: the successor group and what
// this node did.
type ReformResult struct {
	// GroupID and Name are the successor's.
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
	// Action is ReformStarted, ReformJoined or ReformAlready.
	Action string `json:"action"`
	// Continues says which history the successor continues.
	Continues Continuation `json:"continues"`
	// Invited lists the members invited (by display name, or fingerprint
	// without one), when this node started the successor. A name flagged
	// as [Member].NameShared would be has the fingerprint after it, as
	// have WithoutName and ByName in [Continuation].
	Invited []string `json:"invited,omitempty"`
	// Refused lists the successors other members offered that this node
	// did not join, each with its Problem.
	Refused []SuccessorOffer `json:"refused,omitempty"`
}

// Continuation says which history a successor group continues: the halted
// group, the index through which its creator's history of it is taken, the
// chain head there, and the member left out.
type Continuation struct {
	// GroupID and Name are the halted group's (Name as this node knows it).
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
	// Index and Head (hex) are where the successor takes the halted group's
	// history up: every member of the successor held the same history
	// through Index when it joined.
	Index uint64 `json:"index"`
	Head  string `json:"head"`
	// Without is the public id of the member left out, WithoutName its
	// display name where this node knows it (with the fingerprint after a
	// name flagged as [Member].NameShared would be; its fingerprint alone
	// otherwise).
	Without     string `json:"without"`
	WithoutName string `json:"without_name,omitempty"`
	// By is the public id of the member that started the successor, ByName
	// its display name, as WithoutName.
	By     string `json:"by"`
	ByName string `json:"by_name,omitempty"`
	// Message says it for a person.
	Message string `json:"message"`
}

// SuccessorOffer is a successor of a halted group that this node knows of:
// one it is a member of, or one another member offered it.
type SuccessorOffer struct {
	// GroupID is the successor's id.
	GroupID string `json:"group_id"`
	// Continues says which history it continues, and who started it.
	Continues Continuation `json:"continues"`
	// Member is set when this node is a member of it.
	Member bool `json:"member,omitempty"`
	// Problem says why this node will not join it ("" when it can: its
	// history matches this node's through the index it continues from).
	Problem string `json:"problem,omitempty"`
}
