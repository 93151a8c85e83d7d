package node

import "encoding/json"

// groupInfo is the per-group metadata kept in the store beside the log.
type groupInfo struct {
	Name string `json:"name"`
	// Provisional is the member list a joiner trusts until its log has caught
	// up far enough to know the members itself.
	Provisional []provisionalMember `json:"provisional,omitempty"`
	// RemovedBy is the public id of the admin who removed this node from
	// the group, and RemovedByName that admin's name then; empty while a
	// member, and after a leave of its own. Kept here because a snapshot
	// records that a member went, not who sent it away.
	RemovedBy     string `json:"removed_by,omitempty"`
	RemovedByName string `json:"removed_by_name,omitempty"`
}

type provisionalMember struct {
	PublicID string `json:"public_id"`
	URL      string `json:"url"`
	Voter    bool   `json:"voter"`
}

func encodeGroupInfo(i groupInfo) []byte {
	b, _ := json.Marshal(i)
	return b
}

func decodeGroupInfo(b []byte) (groupInfo, error) {
	var i groupInfo
	err := json.Unmarshal(b, &i)
	return i, err
}
