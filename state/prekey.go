package state

import (
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/crypto/prekey"
)

// applyPrekey applies a member's prekey entry (issue 19; docs/PROTOCOL.md,
// "Forward secrecy"): its payload is the member's signed prekey, which
// becomes the one the others seal their sender keys to. It must be the
// signer's own, valid at the entry's signing time, and newer (a later
// not-before) than the member's current one, so that nobody can bring back
// an old prekey and a member's prekeys only move forward; its not-before may
// not be later than a message's quota time may be ([QuotaLead] after the
// voters' clock). The entry's bytes count against the member's daily quota,
// as a message's do (not against the messages per minute: a rekey must not
// cost a message), so that prekeys cannot flood the log. A keeper reads
// nothing and publishes none.
func (s *State) applyPrekey(m *Member, env *crypto.Envelope, size int) error {
	if len(env.Payload) > prekey.MaxSigned {
		return reject("prekey of %d bytes, limit %d", len(env.Payload), prekey.MaxSigned)
	}
	p, err := prekey.Decode(env.Payload)
	if err != nil {
		return reject("malformed prekey: %v", err)
	}
	if p.Owner != env.Sender {
		return reject("prekey of %x published by %x", p.Owner[:4], env.Sender[:4])
	}
	if err := p.ValidAt(time.Unix(0, env.Time)); err != nil {
		return reject("prekey not valid when it was signed: %v", err)
	}
	if p.NotBefore.UnixNano() > s.quotaCeiling() {
		return reject("prekey valid from %s, ahead of the group's clock", p.NotBefore.UTC().Format(time.RFC3339))
	}
	if len(m.Prekey) > 0 {
		cur, err := prekey.Decode(m.Prekey)
		if err == nil && !p.NotBefore.After(cur.NotBefore) {
			return reject("prekey not newer than the member's current one (not before %s, current %s)",
				p.NotBefore.UTC().Format(time.RFC3339Nano), cur.NotBefore.UTC().Format(time.RFC3339Nano))
		}
	}
	u, err := m.Quota.chargeBytes(s.quotaTime(m, env.Time), uint64(size), s.Settings)
	if err != nil {
		return err
	}
	m.Quota = u
	m.Prekey = append([]byte(nil), env.Payload...)
	return nil
}

// Prekey returns the current signed prekey of the member whose signing key
// is sender, or nil if it has published none (or is not a member).
func (s *State) Prekey(sender [32]byte) []byte {
	if m := s.Members[sender]; m != nil && len(m.Prekey) > 0 {
		return m.Prekey
	}
	return nil
}
