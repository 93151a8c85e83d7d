// Package e2e holds end-to-end tests that run real nodes (node.Service, as
// `demes serve` and `demes demo` run them) behind their local API and drive
// them through the browser UI in headless Chromium. It has no code of its own.
//
// The tests live here rather than in package web so that web, and its tests,
// need neither package node nor raft: web sees a node only through its
// Backend interface, and its own tests use an in-memory fake. Run them with
// `go test ./e2e/`; without Chromium they skip, unless $CI is set.
package e2e
