package p2p

import (
	"crypto/ed25519"
	"fmt"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerID returns the libp2p peer id of an ed25519 identity key. It is the
// identity multihash of the key's protobuf encoding ("12D3KooW..."), the
// same for every implementation of libp2p, so an invite to a public key
// names the peer that must answer at the invitee's addresses.
func PeerID(signKey [32]byte) (peer.ID, error) {
	pub, err := lcrypto.UnmarshalEd25519PublicKey(signKey[:])
	if err != nil {
		return "", fmt.Errorf("libp2p peer id: %w", err)
	}
	return peer.IDFromPublicKey(pub)
}

// SignKey returns the ed25519 key a peer id was derived from, or false for
// an id of another key type (or a hashed one): such a peer is no member.
func SignKey(id peer.ID) ([32]byte, bool) {
	pub, err := id.ExtractPublicKey()
	if err != nil || pub.Type() != lcrypto.Ed25519 {
		return [32]byte{}, false
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != 32 {
		return [32]byte{}, false
	}
	return [32]byte(raw), true
}

// privateKey turns an ed25519 seed into the key libp2p signs its handshakes
// with.
func privateKey(seed []byte) (lcrypto.PrivKey, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("libp2p key: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	k, err := lcrypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return nil, fmt.Errorf("libp2p key: %w", err)
	}
	return k, nil
}
