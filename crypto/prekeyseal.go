package crypto

import (
	"errors"
	"fmt"
	"time"

	"github.com/demes/demes/crypto/prekey"
	"github.com/demes/demes/identity"
)

// Key headers sealed to prekeys (sealed message version 3; issue 19,
// docs/PROTOCOL.md "Forward secrecy"): the version 3 parts of sealing and
// opening, beside the rest of sender keys in senderkey.go.

// SealMessageToPrekeys is [SealMessage] with the key header sealed to the
// recipients' prekeys instead of their identity keys (sealed message version
// 3): each stanza opens only with the secret of the prekey it names, which
// its owner deletes a grace period after the prekey expired, so that the
// header, kept in the log for good, opens for nobody after that (forward
// secrecy); see [prekey.SealKey] for the rules on the prekeys, which must
// be valid at now, one per recipient. The author is not added: include its
// own prekey for it to open the header too.
func SealMessageToPrekeys(author *identity.Identity, m *Message, key *SenderKey, to []*prekey.Prekey, now time.Time) ([]byte, error) {
	if key == nil {
		return nil, errors.New("seal message: nil author, message or key")
	}
	if len(to) == 0 {
		return nil, errors.New("seal message: key header: no recipients")
	}
	hdr, err := SealKeyHeader(key, to, now)
	if err != nil {
		return nil, fmt.Errorf("seal message: %w", err)
	}
	return sealMessage(author, m, key, SealedVersionRatchetPrekey, hdr)
}

// SealKeyHeader seals key to the recipients' prekeys and returns the key
// header that [SealMessageToPrekeys] puts in a message, for
// [SealMessageWithHeader]. The header names the key and the prekeys, not a
// message: every message sent under key until the group registers it may
// carry the same header (a sender seals it once rather than once a message:
// the HPKE encapsulations to every recipient cost far more than the
// message).
func SealKeyHeader(key *SenderKey, to []*prekey.Prekey, now time.Time) ([]byte, error) {
	if key == nil {
		return nil, errors.New("key header: nil key")
	}
	if len(to) == 0 {
		return nil, errors.New("key header: no recipients")
	}
	if key.Floor() > 0 {
		return nil, errFloorHeader
	}
	hdr, err := prekey.SealKey(key.context(), &key.Key, to, now)
	if err != nil {
		return nil, fmt.Errorf("key header: %w", err)
	}
	return hdr, nil
}

// SealKeyHeaderLinked is [SealKeyHeader] with a key header of version 2:
// over a link to each recipient that has one (prekey.Recipient), and to the
// others in a full stanza that starts one, returned for the caller to keep
// (prekey.SealKeyLinked).
func SealKeyHeaderLinked(key *SenderKey, to []prekey.Recipient, now time.Time) ([]byte, []*prekey.SendLink, error) {
	if key == nil {
		return nil, nil, errors.New("key header: nil key")
	}
	if len(to) == 0 {
		return nil, nil, errors.New("key header: no recipients")
	}
	if key.Floor() > 0 {
		return nil, nil, errFloorHeader
	}
	hdr, started, err := prekey.SealKeyLinked(key.context(), &key.Key, to, now)
	if err != nil {
		return nil, nil, fmt.Errorf("key header: %w", err)
	}
	return hdr, started, nil
}

// SealMessageWithHeader is [SealMessageToPrekeys] with a key header that
// [SealKeyHeader] sealed for key before. The header must be for key (its
// group, sender, epoch and id); otherwise sealing fails, as every reader
// would refuse the message.
func SealMessageWithHeader(author *identity.Identity, m *Message, key *SenderKey, hdr []byte) ([]byte, error) {
	if hdr == nil {
		return nil, errors.New("seal message: no key header")
	}
	sealed, _, err := SealOwn(author, m, key, hdr)
	return sealed, err
}

// SealOwn seals m under key, with no key header when hdr is nil (as
// [SealMessage] without recipients) or else with hdr, a header that
// [SealKeyHeader] sealed for key (as [SealMessageWithHeader]). It also
// returns what [OpenMessage] returns for these sealed bytes and key: the
// record, decoded as opening decodes it, and its signature. The author's
// node shows its own message from that once the group commits it, rather
// than decrypt and check the signature it has just made.
func SealOwn(author *identity.Identity, m *Message, key *SenderKey, hdr []byte) ([]byte, *Opened, error) {
	if key == nil {
		return nil, nil, errors.New("seal message: nil author, message or key")
	}
	version := uint64(SealedVersionRatchet)
	if hdr != nil {
		h, err := prekey.ReadHeader(hdr)
		if err != nil {
			return nil, nil, fmt.Errorf("seal message: key header: %w", err)
		}
		if h.Context != key.context() {
			return nil, nil, fmt.Errorf("seal message: key header: for key %x of epoch %d, not for key %x of epoch %d",
				h.Context.KeyID[:4], h.Context.Epoch, key.ID[:4], key.Epoch)
		}
		version = SealedVersionRatchetPrekey
	}
	sealed, record, sig, counter1, err := sealRecord(author, m, key, version, hdr)
	if err != nil {
		return nil, nil, err
	}
	got, err := decodeRecord(record)
	if err != nil {
		return nil, nil, fmt.Errorf("seal message: %w", err)
	}
	return sealed, &Opened{Message: *got, Record: record, Sig: sig, Counter: counter1}, nil
}

// context is what a prekey key header binds k to.
func (k *SenderKey) context() prekey.KeyContext {
	return prekey.KeyContext{Group: k.Group, Sender: k.Sender, Epoch: k.Epoch, KeyID: k.ID}
}

// readPrekeyHeader reads the prekey key header of a version 3 message and
// checks that it is for the key the message names.
func readPrekeyHeader(w *sealedWire) (*prekey.Header, error) {
	h, err := prekey.ReadHeader(w.Header)
	if err != nil {
		return nil, fmt.Errorf("key header: %w: %v", ErrMalformed, err)
	}
	if h.Context.Epoch != w.Epoch || h.Context.KeyID != [KeyIDSize]byte(w.KeyID) {
		return nil, fmt.Errorf("%w: the key header holds key %x of epoch %d, the message names %x of epoch %d",
			ErrMalformed, h.Context.KeyID[:4], h.Context.Epoch, w.KeyID[:4], w.Epoch)
	}
	return h, nil
}

// openPrekeyHeader opens me's stanza of a version 3 message's key header.
// The header must be for the key the message names, of sender in group.
func openPrekeyHeader(me *identity.Identity, secrets prekey.Secrets, group GroupID, w *sealedWire, sender [32]byte) (*SenderKey, error) {
	h, err := readPrekeyHeader(w)
	if err != nil {
		return nil, fmt.Errorf("open sender key: %w", err)
	}
	switch {
	case h.Context.Group != group:
		return nil, fmt.Errorf("open sender key: %w: key for group %s, received in %s", ErrWrongGroup, GroupID(h.Context.Group), group)
	case h.Context.Sender != sender:
		return nil, fmt.Errorf("open sender key: %w: key of %x, sent by %x", ErrAuthorMismatch, h.Context.Sender[:4], sender[:4])
	}
	if secrets == nil {
		secrets = noSecrets{}
	}
	key, err := prekey.OpenKey(w.Header, h.Context, me.Public().Sign, secrets)
	switch {
	case errors.Is(err, prekey.ErrNotRecipient):
		return nil, fmt.Errorf("open sender key: %w", ErrNotRecipient)
	case errors.Is(err, prekey.ErrNoLink):
		// Kept in the chain: a link not held is no lost prekey secret
		// (node.group.deliver tells them apart).
		return nil, fmt.Errorf("open sender key: %w: %w", ErrKeyDeleted, prekey.ErrNoLink)
	case errors.Is(err, prekey.ErrNoSecret):
		return nil, fmt.Errorf("open sender key: %w", ErrKeyDeleted)
	case err != nil:
		return nil, fmt.Errorf("open sender key: %w: %v", ErrMalformed, err)
	}
	k := &SenderKey{Group: group, Sender: sender, Epoch: w.Epoch, ID: [KeyIDSize]byte(w.KeyID), Key: key}
	clear(key[:])
	return k, nil
}

// noSecrets holds no prekey secret.
type noSecrets struct{}

func (noSecrets) Secret([prekey.IDSize]byte) *prekey.Secret { return nil }

func (noSecrets) Link([prekey.IDSize]byte, [prekey.LinkIDSize]byte) ([prekey.LinkRootSize]byte, bool) {
	return [prekey.LinkRootSize]byte{}, false
}

func (noSecrets) KeepLink([prekey.IDSize]byte, [prekey.LinkRootSize]byte) {}
