// Package netns holds end-to-end tests that run real `demes serve` and
// `demes relay` processes in Linux network namespaces, one namespace per
// machine, joined by bridges, routers and NAT as the test builds them. They
// check reachability as people meet it (issue 20): members on one LAN over
// HTTP and over libp2p, members on networks with no route between them
// through a relay, members behind two home routers that masquerade, and a
// member whose machine moves to another network mid-conversation.
//
// The package has no code of its own. Its tests need root and iproute2's
// `ip` (the NAT test also `nft`) and skip, saying why, without them. Every
// namespace, bridge and veth a test creates lives in namespaces it made and
// deletes, so the host's own network is not touched. Run them with
// `go test -count=1 ./e2e/netns/ -v`.
package netns
