package node

import (
	"errors"
	"time"
)

// The types in this file are what the node shows the outside world: the local
// API (package web) serialises them as JSON, the CLI prints them. Field names
// in JSON follow the command-line contract.

// GroupInfo names one group this node belongs to.
type GroupInfo struct {
	GroupID string `json:"group_id"`
	Name    string `json:"name"`
}

// Message is one chat message as a member reads it.
type Message struct {
	ID      string    `json:"id"`     // hex message id, stable across retries
	Index   uint64    `json:"index"`  // position in the group's log; 0 while queued
	Author  string    `json:"author"` // public id (demes1...)
	Name    string    `json:"name"`   // author's display name, if known
	Text    string    `json:"text"`
	SentAt  time.Time `json:"sent_at"`
	State   string    `json:"state"` // "committed" or "queued" (still in the outbox)
	GroupID string    `json:"group_id"`
}

// Message states.
const (
	StateCommitted = "committed"
	StateQueued    = "queued"
)

// Member is one member of a group as this node sees it.
type Member struct {
	PublicID    string  `json:"public_id"`
	Name        string  `json:"name"`
	Fingerprint string  `json:"fingerprint"`
	Voter       bool    `json:"voter"`
	Online      bool    `json:"online"`
	RTTMillis   float64 `json:"rtt_ms"` // this node's smoothed RTT to the member; 0 for itself or unknown
	Host        bool    `json:"host"`
	Self        bool    `json:"self"`
	SafetyNum   string  `json:"safety_number,omitempty"` // with this node's identity; empty for itself
	PeerURL     string  `json:"peer_url,omitempty"`
}

// Edge is one measured latency between two members, as the election package
// uses it (the larger of the two endpoints' reports).
type Edge struct {
	A         string  `json:"a"`
	B         string  `json:"b"`
	RTTMillis float64 `json:"rtt_ms"`
}

// GroupStatus is the state of one group.
type GroupStatus struct {
	GroupID    string   `json:"group_id"`
	Name       string   `json:"name"`
	Host       string   `json:"host"` // public id of the leader, "" if none known
	Term       uint64   `json:"term"`
	Preference []string `json:"preference"` // public ids, host first
	Members    []Member `json:"members"`
	Edges      []Edge   `json:"edges"`
	Committed  uint64   `json:"committed"` // commit index
	Queued     int      `json:"queued"`    // messages waiting in the outbox
	HasQuorum  bool     `json:"has_quorum"`
	Role       string   `json:"role"` // "leader", "follower", "candidate", "learner", ...
}

// Status is the state of the node and all its groups.
type Status struct {
	PublicID    string           `json:"public_id"`
	Name        string           `json:"name"`
	Fingerprint string           `json:"fingerprint"`
	PeerURL     string           `json:"peer_url"`
	Running     bool             `json:"running"`
	Groups      []GroupStatus    `json:"groups"`
	Rejected    map[string]int64 `json:"rejected"` // rejected envelopes by reason
}

// Event is pushed to subscribers (the browser, through server-sent events)
// when something they show changes.
type Event struct {
	Kind    string   `json:"kind"` // "message", "status"
	GroupID string   `json:"group_id,omitempty"`
	Message *Message `json:"message,omitempty"`
}

// Errors the local API maps to HTTP statuses; errors returned by the node wrap
// one of them where it applies.
var (
	// ErrNotFound: no such group, message or member (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request is malformed or not allowed (HTTP 400).
	ErrInvalid = errors.New("invalid request")
	// ErrStopped: the node is stopped (demo mode) (HTTP 503).
	ErrStopped = errors.New("node is stopped")
)
