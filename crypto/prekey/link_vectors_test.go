package prekey

import (
	"bytes"
	"crypto/ecdh"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"
)

// The vectors in testdata/crypto/keylink.json are the known answers of key
// headers of version 2 (key links): a first header of full stanzas, which
// starts a link to each recipient, then two headers over those links, at
// steps 0 and 1. The prekeys are those of testdata/crypto/prekey.json. As
// there, the randomness (HPKE's, the link roots and the X25519 shares) comes from
// testing/cryptotest seed 1; another implementation checks the file by
// opening each header in turn, learning the roots from the first.
//
// Regenerate with go test ./crypto/prekey -run TestLinkVectors -update

const linkVectorFile = "../../testdata/crypto/keylink.json"

type linkVectors struct {
	Comment string             `json:"comment"`
	Domains map[string]string  `json:"domains"`
	Headers []linkHeaderVector `json:"headers"`
}

type linkHeaderVector struct {
	Epoch  uint64 `json:"epoch,string"`
	Key    string `json:"key"`
	Header string `json:"header"`
	Share  string `json:"share,omitempty"` // the header's X25519 share, with linked stanzas
	// Stanzas says, for each recipient (index into prekey.json's
	// prekeys), what its stanza is and what it derives.
	Stanzas []linkStanzaVector `json:"stanzas"`
}

type linkStanzaVector struct {
	Recipient int    `json:"recipient"`
	Linked    bool   `json:"linked"`
	LinkID    string `json:"link_id"`
	Root      string `json:"root,omitempty"`       // full stanzas: the root they carry
	Step      uint64 `json:"step,string"`          // linked stanzas
	ChainKey  string `json:"chain_key,omitempty"`  // linked: the chain key at Step
	DH        string `json:"dh,omitempty"`         // linked: X25519(share, the recipient's prekey)
	StanzaKey string `json:"stanza_key,omitempty"` // linked: the ChaCha20-Poly1305 key
}

func TestLinkVectors(t *testing.T) {
	got := buildLinkVectors(t)
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(linkVectorFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(linkVectorFile)
	if err != nil {
		t.Fatalf("%v (generate with -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from what this implementation produces; after a deliberate format change run go test ./crypto/prekey -run TestLinkVectors -update", filepath.Base(linkVectorFile))
	}
	checkLinkVectors(t, want)
}

func vectorPrekeys(t *testing.T) ([]*Prekey, []*SecretSet) {
	var ps []*Prekey
	var sets []*SecretSet
	for i := byte(1); i <= 3; i++ {
		p, s := prekeyOf(t, member(t, i), 0xa0+i)
		set := NewSecretSet()
		set.Add(s)
		ps, sets = append(ps, p), append(sets, set)
	}
	return ps, sets
}

func vectorContext(ps []*Prekey, epoch uint64) KeyContext {
	return KeyContext{Group: [16]byte(bytes.Repeat([]byte{0x67}, 16)), Sender: ps[0].Owner, Epoch: epoch,
		KeyID: [KeyIDSize]byte(bytes.Repeat([]byte{0x4b}, KeyIDSize))}
}

func buildLinkVectors(t *testing.T) *linkVectors {
	v := &linkVectors{
		Comment: "DeMeS key headers v2 with key links (docs/PROTOCOL.md, Key links). Prekeys 0 to 2 are those of prekey.json; " +
			"prekey 0's owner is the sender. Binary values are lower-case hex. Generated with testing/cryptotest seed 1. " +
			"Regenerate with: go test ./crypto/prekey -run TestLinkVectors -update",
		Domains: map[string]string{"info": headerDomainV2, "link_id": linkIDDomain, "chain": linkChainLabel, "stanza": linkStanzaLabel},
	}
	ps, sets := vectorPrekeys(t)
	cryptotest.SetGlobalRandom(t, 1)
	now := t0.Add(time.Hour)
	links := map[int]*SendLink{}
	for h := range 3 {
		ctx := vectorContext(ps, uint64(42+h))
		key := [KeySize]byte(bytes.Repeat([]byte{0x5e + byte(h)}, KeySize))
		hv := linkHeaderVector{Epoch: ctx.Epoch, Key: hex.EncodeToString(key[:])}
		var rs []Recipient
		chains := map[int][32]byte{}
		for i, p := range ps {
			r := Recipient{Prekey: p}
			if l := links[i]; l != nil && i > 0 {
				r.Link, r.Linked = l, true
				chains[i] = l.chain
				hv.Stanzas = append(hv.Stanzas, linkStanzaVector{Recipient: i, Linked: true, LinkID: hex.EncodeToString(l.ID[:]), Step: l.next,
					ChainKey: hex.EncodeToString(l.chain[:])})
			}
			rs = append(rs, r)
		}
		hdr, started, err := SealKeyLinked(ctx, &key, rs, now)
		if err != nil {
			t.Fatal(err)
		}
		d, err := decodeHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.share) > 0 {
			hv.Share = hex.EncodeToString(d.share)
			pub, err := ecdh.X25519().NewPublicKey(d.share)
			if err != nil {
				t.Fatal(err)
			}
			for j, sv := range hv.Stanzas {
				p := ps[sv.Recipient]
				dh, err := sets[sv.Recipient].Secret(p.ID).x.ECDH(pub)
				if err != nil {
					t.Fatal(err)
				}
				c := chains[sv.Recipient]
				id := links[sv.Recipient].ID
				hv.Stanzas[j].DH = hex.EncodeToString(dh)
				hv.Stanzas[j].StanzaKey = hex.EncodeToString(stanzaKey(&c, linkInfo(&ctx, p.Owner, p.ID, id, sv.Step), d.share, dh))
			}
		}
		for _, l := range started {
			for i, p := range ps {
				if p.Owner == l.Owner {
					links[i] = l
					hv.Stanzas = append(hv.Stanzas, linkStanzaVector{Recipient: i, LinkID: hex.EncodeToString(l.ID[:]),
						Root: hex.EncodeToString(l.chain[:])})
				}
			}
		}
		hv.Header = hex.EncodeToString(hdr)
		v.Headers = append(v.Headers, hv)
	}
	return v
}

// checkLinkVectors checks the stored file as another implementation would:
// each header opens for each recipient, the roots from the full stanzas
// with the prekeys' secrets, the linked ones with those roots.
func checkLinkVectors(t *testing.T, file []byte) {
	var v linkVectors
	if err := json.Unmarshal(file, &v); err != nil {
		t.Fatal(err)
	}
	ps, sets := vectorPrekeys(t)
	linkedSeen := 0
	for _, hv := range v.Headers {
		h, _ := hex.DecodeString(hv.Header)
		ctx := vectorContext(ps, hv.Epoch)
		for _, sv := range hv.Stanzas {
			key, err := OpenKey(h, ctx, ps[sv.Recipient].Owner, sets[sv.Recipient])
			if err != nil || hex.EncodeToString(key[:]) != hv.Key {
				t.Fatalf("epoch %d, recipient %d: %x, %v", hv.Epoch, sv.Recipient, key, err)
			}
			id, _ := hex.DecodeString(sv.LinkID)
			root, ok := sets[sv.Recipient].Link(ps[sv.Recipient].ID, [LinkIDSize]byte(id))
			if !ok {
				t.Fatalf("epoch %d, recipient %d: link %s not learnt", hv.Epoch, sv.Recipient, sv.LinkID)
			}
			if !sv.Linked && hex.EncodeToString(root[:]) != sv.Root {
				t.Fatalf("epoch %d, recipient %d: root differs", hv.Epoch, sv.Recipient)
			}
			if sv.Linked {
				linkedSeen++
				c := root
				for range sv.Step {
					c = stepChain(&c)
				}
				if hex.EncodeToString(c[:]) != sv.ChainKey {
					t.Fatalf("epoch %d, recipient %d: chain key at step %d differs", hv.Epoch, sv.Recipient, sv.Step)
				}
				share, _ := hex.DecodeString(hv.Share)
				pub, err := ecdh.X25519().NewPublicKey(share)
				if err != nil {
					t.Fatalf("epoch %d: share: %v", hv.Epoch, err)
				}
				dh, err := sets[sv.Recipient].Secret(ps[sv.Recipient].ID).x.ECDH(pub)
				if err != nil || hex.EncodeToString(dh) != sv.DH {
					t.Fatalf("epoch %d, recipient %d: the X25519 value differs", hv.Epoch, sv.Recipient)
				}
			}
		}
	}
	if linkedSeen != 4 {
		t.Fatalf("%d linked stanzas in the vectors, want 4 (two headers to two recipients)", linkedSeen)
	}
}
