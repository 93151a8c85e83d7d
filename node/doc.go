// Package node runs a DeMeS node: the member's groups, each a raft group
// (go.etcd.io/raft/v3) whose leader is the group's host; the signed peer
// transport; the durable store; the outbox; invites and joins; and the events
// the UI shows. The pure parts it builds on live beside it: the group state
// machine in package state, placement in package election, envelopes and
// sealing in package crypto.
//
// # The flow of one message
//
// From a member's send to every member's screen, in the order of the code:
//
//  1. [Node.Send] hands the text to the group's goroutine (group.do), which
//     seals it under this member's sender key, signs the envelope and puts
//     it in the outbox (outbox.go: enqueue, seal).
//  2. The goroutine proposes the frame to raft (propose). On a follower raft
//     forwards the proposal to the host as a MsgProp; with no host known it
//     drops it at once, and the outbox proposes it again later
//     (retryOutbox), the message id making every retry idempotent.
//  3. raft hands the goroutine a Ready (ready.go: handleReady): the host
//     sends its appends first, then writes the entries and the outbox in
//     one fsynced transaction (persist), then sends the rest.
//  4. Each raft message leaves through a per-peer queue that batches what
//     waits under one signature per group and request (peer.go: sendRaft,
//     peer.run, peer.send), over the node's [Link].
//  5. On the member, the peer listener verifies the envelope (signature,
//     group, recipient, replay window, membership; handle.go: HandleFrame),
//     admits each raft message inside by a pure rule (admit.go: admit) and
//     hands the batch to the group's goroutine, which steps raft with it.
//  6. Once a majority has the entry on disk it is committed: each member's
//     goroutine applies it to the state machine (apply.go: apply, which
//     checks the envelope's signature and its place in the group), opens it
//     with the sender key (deliver) and lists it; the author drops it from
//     its outbox (commitOutbox) and [Node.Send] returns.
//  7. The goroutine publishes a new immutable view (views.go: publish) and an
//     [Event], which the UI shows.
//
// # Ownership
//
// Each group's state belongs to one goroutine (group.run, group.go), which
// drives the group's raft.RawNode as etcd raft's rawnode.go intends: it
// ticks it, steps it with peers' messages, proposes, and runs the Ready loop
// (persist, send, apply, Advance). Nothing else touches raft: other
// goroutines talk to the group through channels (requests, raft messages,
// unreachable peers, RTT samples), or read the immutable view it publishes
// after each change, and wait for a state of it by waking at each change
// (waitView) rather than polling.
//
// # Where things are
//
//	config.go     every setting, default and tunable
//	group.go      the group goroutine and its channels
//	ready.go      one Ready: persist, send, Advance
//	apply.go      committed entries into the state machine and the screen
//	outbox.go     sealing, proposing and retrying the member's own messages
//	snapshot.go   snapshots of the state machine, and restarts from them
//	boardstore.go the board (reactions, edits, files) stored with each
//	              snapshot; boardparts.go: its parts, each written once
//	views.go      the published view and the status built from it
//	upkeep.go     periodic duties: address updates, checkpoints
//	placement.go  latency measurement and the host and voter placement
//	attest.go     members' reports of whom they follow, and pings
//	join.go       invites and joins; leave.go: leaving and removals
//	fork.go       signed heads, fork proofs and the halt
//	reform.go     successors of a halted group: offers and their checks;
//	              reform_start.go: Node.Reform, starting one
//	handle.go     the peer listener: checks on every incoming frame
//	admit.go      the admission rule for peers' raft messages
//	peer.go       the per-peer send queues and batches; link.go: HTTP
//	logstore.go   raft's view of the stored log
//	service.go    a node that can be stopped and started in one process
//
// # What reaches the disk
//
// The store (package store) holds raft entries (signed envelopes with sealed
// payloads), the outbox (the same), and each group's latest snapshot of its
// state machine (ids, keys, hashes, membership). Plaintext exists only in
// memory, after a member opens a message sealed to it.
package node
