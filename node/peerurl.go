package node

import (
	"bytes"
	"strings"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
)

// A member's address is its own to set, and only its own: a p2p URL names
// the peer that must answer at it (its /p2p/ peer id, which is derived from
// an identity key), and one that names another member's peer id is no
// address of the member that gave it. Taken as such, it would send the
// member's traffic to the other one (the frames, addressed to the first,
// are refused there), and worse: the libp2p host keeps every address a URL
// lists for the peer it names, so a member that announced URLs naming
// another member's peer id at addresses of its own (ports that accept and
// never answer) would have the others dial those, before the member's real
// ones, whenever they connect to it again, and not reach it for the dial
// timeout or longer (p2p's dial limit per peer, 8, fills up with them).
// So such a URL is refused in an address announcement, and not used where
// the group's state holds it (an address entry or a join that committed):
// the state machine still applies such entries, so that builds agree on
// the state, and only the links ignore the URL.

// ownURL returns url if it can be member k's address, "" otherwise (see
// above): any URL other than a p2p one, and a p2p URL whose every address
// ends in k's peer id.
func ownURL(k [32]byte, url string) string {
	if !urlOf(k, url) {
		return ""
	}
	return url
}

// urlOf reports whether url can be member k's address (see ownURL).
// Every view a group publishes asks it of every member, so the answers
// for p2p URLs are kept: parsing one took about 16 us.
func urlOf(k [32]byte, url string) bool {
	rest, ok := strings.CutPrefix(url, P2PScheme)
	if !ok {
		return true
	}
	c := urlCheck{k, url}
	urlChecks.Lock()
	ok, known := urlChecks.m[c]
	urlChecks.Unlock()
	if known {
		return ok
	}
	ok = parsedURLOf(k, rest)
	urlChecks.Lock()
	if urlChecks.m == nil || len(urlChecks.m) >= maxURLChecks {
		urlChecks.m = map[urlCheck]bool{} // a bound against junk URLs
	}
	urlChecks.m[c] = ok
	urlChecks.Unlock()
	return ok
}

// urlChecks are urlOf's answers for p2p URLs, at most maxURLChecks.
var urlChecks struct {
	sync.Mutex
	m map[urlCheck]bool
}

type urlCheck struct {
	k   [32]byte
	url string
}

const maxURLChecks = 4096

// parsedURLOf is urlOf for rest, a p2p URL without its scheme.
func parsedURLOf(k [32]byte, rest string) bool {
	// The identity multihash of the key's libp2p protobuf encoding
	// (p2p.PeerID): identity (0x00), 36 bytes, key type ed25519, 32 bytes.
	want := append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, k[:]...)
	named := false
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, err := ma.NewMultiaddr(part)
		if err != nil {
			return false
		}
		_, last := ma.SplitLast(a)
		if last == nil || last.Protocol().Code != ma.P_P2P || !bytes.Equal(last.RawValue(), want) {
			return false
		}
		named = true
	}
	return named
}
