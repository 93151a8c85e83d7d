package nodetest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
	"github.com/demes/demes/keystore"
	"github.com/demes/demes/transcript"
	"github.com/demes/demes/transcript/transcripttest"
)

// Loot is what a thief finds in a member's home (issue 19): its identity,
// and in its key store (keys.db, see node/keys.go for the names) the prekey
// secrets, the roots of the key links to them, and the sender keys the
// member still keeps. Tests of forward secrecy
// read a group's log with it, as the thief would.
type Loot struct {
	ID         *identity.Identity
	Prekeys    *prekey.SecretSet
	SenderKeys map[crypto.KeyRef]*crypto.SenderKey
}

// TakeLoot reads the key store in dir (a node's directory) with id. It
// reads a copy, so that the node may keep running; a directory without a
// key store gives the identity alone.
func TakeLoot(dir string, id *identity.Identity) (*Loot, error) {
	l := &Loot{ID: id, Prekeys: prekey.NewSecretSet(), SenderKeys: map[crypto.KeyRef]*crypto.SenderKey{}}
	src := filepath.Join(dir, "keys.db")
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return l, nil
	}
	tmp, err := os.MkdirTemp("", "loot")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cp := filepath.Join(tmp, "keys.db")
	if err := copyFile(src, cp); err != nil {
		return nil, err
	}
	ks, err := keystore.Open(cp, id)
	if err != nil {
		return nil, err
	}
	defer ks.Close()
	for _, e := range ks.List("prekey/") {
		raw, _ := ks.Get(e.Name)
		if len(raw) <= prekey.SecretSize {
			return nil, fmt.Errorf("loot: prekey %s of %d bytes", e.Name, len(raw))
		}
		p, err := prekey.Decode(bytes.Clone(raw[prekey.SecretSize:]))
		if err != nil {
			return nil, fmt.Errorf("loot: %s: %w", e.Name, err)
		}
		s, err := prekey.RestoreSecret(p, [prekey.SecretSize]byte(raw[:prekey.SecretSize]))
		if err != nil {
			return nil, fmt.Errorf("loot: %s: %w", e.Name, err)
		}
		l.Prekeys.Add(s)
	}
	// The roots of key links, beside their prekeys' secrets
	// (link/<prekey id>/<link id>).
	for _, e := range ks.List("link/") {
		raw, _ := ks.Get(e.Name)
		id, err := hex.DecodeString(strings.SplitN(e.Name, "/", 3)[1])
		if err != nil || len(id) != prekey.IDSize || len(raw) != prekey.LinkRootSize {
			return nil, fmt.Errorf("loot: link %s does not decode", e.Name)
		}
		l.Prekeys.KeepLink([prekey.IDSize]byte(id), [prekey.LinkRootSize]byte(raw))
	}
	for _, e := range ks.List("sender/") {
		raw, _ := ks.Get(e.Name)
		k, err := crypto.UnmarshalSenderKey(raw)
		if err != nil {
			return nil, fmt.Errorf("loot: %s: %w", e.Name, err)
		}
		l.SenderKeys[k.Ref()] = k
	}
	return l, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Read opens every chat entry of a group's log (entries, as
// node.Node.LogFrames gives them) that the loot opens: with a sender key it
// holds, or with one learnt from a key header it opens with the identity
// key (versions 2 and 4) or a prekey secret (versions 3 and 5), in log
// order. It tries both, as a thief would: a stored key may be advanced past
// a message (its floor) that the key from a header, chain key 0, opens. It
// returns the opened messages by log index, whether or not the group
// accepted them.
func (l *Loot) Read(group crypto.GroupID, entries []transcript.Entry) map[uint64]*crypto.Opened {
	keys := map[crypto.KeyRef]*crypto.SenderKey{}
	for r, k := range l.SenderKeys {
		keys[r] = k
	}
	var secrets prekey.Secrets
	if l.Prekeys != nil {
		secrets = l.Prekeys
	}
	headers := map[crypto.KeyRef]*crypto.SenderKey{} // keys opened from headers
	out := map[uint64]*crypto.Opened{}
	for _, c := range transcripttest.SealedChats(entries) {
		ref := c.Ref()
		// Every header, not only each key's first: a later one may carry
		// a key link's root that the first did not.
		if c.Info.HasHeader() {
			if k, err := crypto.OpenSenderKeyWith(l.ID, secrets, group, c.Sealed, c.Sender); err == nil && k.Ref() == ref && headers[ref] == nil {
				headers[ref] = k
			}
		}
		for _, k := range []*crypto.SenderKey{keys[ref], headers[ref]} {
			if k == nil {
				continue
			}
			if o, err := crypto.OpenMessage(k, group, c.Sealed, c.Sender, c.ID); err == nil {
				out[c.Index] = o
				break
			}
		}
	}
	return out
}
