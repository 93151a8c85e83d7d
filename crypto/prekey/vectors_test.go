package prekey

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/demes/demes/internal/canon"
)

// The vectors in testdata/crypto/prekey.json are the known answers of the
// prekey and key header formats. Prekeys are deterministic (the secret is
// the X-Wing seed; Ed25519 is deterministic). Key headers draw HPKE's
// encapsulation randomness, so they are generated with crypto/rand replaced
// by a seeded generator (testing/cryptotest, seed 1): this implementation
// reproduces them byte for byte as long as Go draws that randomness in the
// same order, and any implementation checks them by opening each stanza
// with the stored secret.
//
// After a deliberate format change, regenerate them with
//
//	go test ./crypto/prekey -run TestVectors -update

var update = flag.Bool("update", false, "rewrite testdata/crypto/prekey.json")

const vectorFile = "../../testdata/crypto/prekey.json"

type prekeyVectors struct {
	Comment string         `json:"comment"`
	Suite   suiteVector    `json:"suite"`
	Prekeys []prekeyVector `json:"prekeys"`
	Headers []headerVector `json:"headers"`
}

type suiteVector struct {
	KEM        uint16 `json:"kem"`
	KDF        uint16 `json:"kdf"`
	AEAD       uint16 `json:"aead"`
	SignDomain string `json:"sign_domain"`
	IDDomain   string `json:"id_domain"`
	InfoDomain string `json:"info_domain"`
}

type prekeyVector struct {
	OwnerSeed string `json:"owner_seed"` // identity.FromSeed input
	Owner     string `json:"owner"`      // ed25519 key
	Secret    string `json:"secret"`     // X-Wing seed
	NotBefore int64  `json:"not_before,string"`
	Expires   int64  `json:"expires,string"`
	PublicKey string `json:"public_key"`
	ID        string `json:"id"`
	Record    string `json:"record"`
	Signature string `json:"signature"`
	Signed    string `json:"signed"`
}

type headerVector struct {
	Name       string   `json:"name"`
	Group      string   `json:"group"`
	Sender     string   `json:"sender"`
	Epoch      uint64   `json:"epoch,string"`
	KeyID      string   `json:"key_id"`
	Key        string   `json:"key"`
	Now        int64    `json:"now,string"`
	Recipients []int    `json:"recipients"` // indexes into prekeys, in sealing order
	Infos      []string `json:"infos"`      // HPKE info of each stanza, canonical order
	Header     string   `json:"header"`
}

func TestVectors(t *testing.T) {
	got := buildVectors(t)
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile(vectorFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("%v (generate with -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s differs from what this implementation produces; after a deliberate format change run go test ./crypto/prekey -run TestVectors -update", filepath.Base(vectorFile))
	}
	checkVectors(t, want)
}

func buildVectors(t *testing.T) *prekeyVectors {
	v := &prekeyVectors{
		Comment: "DeMeS prekeys and key headers v1 (docs/PROTOCOL.md, Forward secrecy). Binary values are lower-case hex; " +
			"times are unix nanoseconds as decimal strings. Headers are generated with testing/cryptotest seed 1. " +
			"Regenerate with: go test ./crypto/prekey -run TestVectors -update",
		Suite: suiteVector{KEM: kem.ID(), KDF: kdf.ID(), AEAD: aead.ID(), SignDomain: signDomain, IDDomain: idDomain, InfoDomain: headerDomain},
	}
	var ps []*Prekey
	for i := byte(1); i <= 3; i++ {
		m := member(t, i)
		p, _ := prekeyOf(t, m, 0xa0+i)
		var sw signedWire
		if err := canon.Decode(p.Bytes(), &sw); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		v.Prekeys = append(v.Prekeys, prekeyVector{
			OwnerSeed: hex.EncodeToString(bytes.Repeat([]byte{i}, 32)),
			Owner:     hex.EncodeToString(p.Owner[:]),
			Secret:    hex.EncodeToString(bytes.Repeat([]byte{0xa0 + i}, 32)),
			NotBefore: p.NotBefore.UnixNano(),
			Expires:   p.Expires.UnixNano(),
			PublicKey: hex.EncodeToString(p.PublicKey()),
			ID:        hex.EncodeToString(p.ID[:]),
			Record:    hex.EncodeToString(sw.Record),
			Signature: hex.EncodeToString(sw.Signature),
			Signed:    hex.EncodeToString(p.Bytes()),
		})
	}
	cryptotest.SetGlobalRandom(t, 1)
	for _, c := range []struct {
		name string
		rs   []int
	}{{"one recipient", []int{1}}, {"three recipients, given out of order", []int{2, 0, 1}}} {
		ctx := KeyContext{Group: [16]byte(bytes.Repeat([]byte{0x67}, 16)), Sender: ps[0].Owner, Epoch: 42,
			KeyID: [KeyIDSize]byte(bytes.Repeat([]byte{0x4b}, KeyIDSize))}
		key := [KeySize]byte(bytes.Repeat([]byte{0x5e}, KeySize))
		now := t0.Add(time.Hour)
		var to []*Prekey
		for _, i := range c.rs {
			to = append(to, ps[i])
		}
		h, err := SealKey(ctx, &key, to, now)
		if err != nil {
			t.Fatal(err)
		}
		hv := headerVector{Name: c.name, Group: hex.EncodeToString(ctx.Group[:]), Sender: hex.EncodeToString(ctx.Sender[:]),
			Epoch: ctx.Epoch, KeyID: hex.EncodeToString(ctx.KeyID[:]), Key: hex.EncodeToString(key[:]), Now: now.UnixNano(),
			Recipients: c.rs, Header: hex.EncodeToString(h)}
		info, _ := ReadHeader(h)
		for _, s := range info.Stanzas {
			hv.Infos = append(hv.Infos, hex.EncodeToString(stanzaInfo(&ctx, s.Owner, s.Prekey)))
		}
		v.Headers = append(v.Headers, hv)
	}
	return v
}

// checkVectors checks the stored file on its own, as another implementation
// would: each prekey from its parts, each header by opening it.
func checkVectors(t *testing.T, file []byte) {
	var v prekeyVectors
	if err := json.Unmarshal(file, &v); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var ps []*Prekey
	var ss []*Secret
	for i, pv := range v.Prekeys {
		p, err := Decode(unhex(pv.Signed))
		if err != nil {
			t.Fatalf("prekey %d: %v", i, err)
		}
		id := prekeyID(p.Owner, p.PublicKey())
		switch {
		case hex.EncodeToString(p.Owner[:]) != pv.Owner, !bytes.Equal(p.PublicKey(), unhex(pv.PublicKey)),
			hex.EncodeToString(id[:]) != pv.ID, p.NotBefore.UnixNano() != pv.NotBefore, p.Expires.UnixNano() != pv.Expires:
			t.Fatalf("prekey %d: decoded fields differ from the stored ones", i)
		}
		if !bytes.Equal(append(append([]byte{0x82, 0x59, byte(len(pv.Record) / 2 >> 8), byte(len(pv.Record) / 2)}, unhex(pv.Record)...),
			append([]byte{0x58, 0x40}, unhex(pv.Signature)...)...), unhex(pv.Signed)) {
			t.Fatalf("prekey %d: signed is not [record, signature]", i)
		}
		s, err := RestoreSecret(p, [SecretSize]byte(unhex(pv.Secret)))
		if err != nil {
			t.Fatalf("prekey %d: %v", i, err)
		}
		ps, ss = append(ps, p), append(ss, s)
	}
	for _, hv := range v.Headers {
		h := unhex(hv.Header)
		ctx := KeyContext{Group: [16]byte(unhex(hv.Group)), Sender: [32]byte(unhex(hv.Sender)), Epoch: hv.Epoch, KeyID: [KeyIDSize]byte(unhex(hv.KeyID))}
		info, err := ReadHeader(h)
		if err != nil || info.Context != ctx || len(info.Stanzas) != len(hv.Recipients) {
			t.Fatalf("%s: read header: %+v, %v", hv.Name, info, err)
		}
		for j, st := range info.Stanzas {
			if got := hex.EncodeToString(stanzaInfo(&ctx, st.Owner, st.Prekey)); got != hv.Infos[j] {
				t.Fatalf("%s: info %d differs", hv.Name, j)
			}
		}
		for i, p := range ps {
			set := NewSecretSet()
			set.Add(ss[i])
			key, err := OpenKey(h, ctx, p.Owner, set)
			listed := false
			for _, r := range hv.Recipients {
				listed = listed || r == i
			}
			switch {
			case listed && (err != nil || hex.EncodeToString(key[:]) != hv.Key):
				t.Fatalf("%s: recipient %d opens %x, %v", hv.Name, i, key, err)
			case !listed && err == nil:
				t.Fatalf("%s: prekey %d opens a header not sealed to it", hv.Name, i)
			}
		}
		var epoch [8]byte
		binary.BigEndian.PutUint64(epoch[:], hv.Epoch)
		if !bytes.Contains(unhex(hv.Infos[0]), epoch[:]) {
			t.Fatalf("%s: the info does not carry the epoch", hv.Name)
		}
	}
}
