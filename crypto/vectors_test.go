package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/demes/demes/identity"
)

// The test vectors in testdata/crypto are the protocol's known answers, for
// this implementation and for any other (docs/PROTOCOL.md points to them).
// Everything in them is derived from fixed seeds and fixed values and is
// checked byte for byte. The sealed messages use randomness (age's ephemeral
// keys and file key, the message nonce): sealed.json is generated with
// crypto/rand replaced by a seeded generator (testing/cryptotest), so it is
// reproducible too, as long as age draws its randomness in the same order;
// the test also opens every sealed message and checks each step of the
// derivation on its own.
//
// After a deliberate format change, regenerate them with
//
//	go test ./crypto -run TestVectors -update

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/crypto")

const vectorDir = "../testdata/crypto"

const vectorComment = "DeMeS protocol test vectors; see docs/PROTOCOL.md. Binary values are lower-case hex; " +
	"seeds are identity.FromSeed inputs; 64-bit counters and times are decimal strings. " +
	"Regenerate with: go test ./crypto -run TestVectors -update"

// Fixed values of the vectors.
const (
	vecCounter = 1700000000000000000
	vecTime    = 1700000000123456789
)

type identityVectors struct {
	Comment       string           `json:"comment"`
	Identities    []identityVector `json:"identities"`
	SafetyNumbers []safetyVector   `json:"safety_numbers"`
}

type identityVector struct {
	Seed         string `json:"seed"`
	Private      string `json:"private"` // ed25519 seed || X25519 scalar
	SecretKey    string `json:"secret_key"`
	SignPublic   string `json:"sign_public"`
	BoxPublic    string `json:"box_public"`
	PublicID     string `json:"public_id"`
	AgeRecipient string `json:"age_recipient"`
	Fingerprint  string `json:"fingerprint"`
}

type safetyVector struct {
	A            string `json:"a"`
	B            string `json:"b"`
	SafetyNumber string `json:"safety_number"`
}

type envelopeVectors struct {
	Comment  string           `json:"comment"`
	Valid    []envelopeVector `json:"valid"`
	Invalid  []invalidFrame   `json:"invalid"`
	Batches  []batchVector    `json:"batches"`
	Domain   string           `json:"signature_domain"`
	Versions []int            `json:"versions"`
}

type envelopeVector struct {
	Name           string `json:"name"`
	SignerSeed     string `json:"signer_seed"`
	Type           uint8  `json:"type"`
	TypeName       string `json:"type_name"`
	Group          string `json:"group"`
	To             string `json:"to"`
	Counter        uint64 `json:"counter,string"`
	Time           int64  `json:"time,string"`
	Payload        string `json:"payload"`
	Body           string `json:"body"`
	SignatureInput string `json:"signature_input"`
	Frame          string `json:"frame"`
}

type invalidFrame struct {
	Name  string `json:"name"`
	Frame string `json:"frame"`
	Error string `json:"error"` // one of the keys of errorNames
}

type batchVector struct {
	Name    string   `json:"name"`
	Items   []string `json:"items"`
	Encoded string   `json:"encoded"`
}

type messageVectors struct {
	Comment string         `json:"comment"`
	Records []recordVector `json:"records"`
}

type recordVector struct {
	Name           string `json:"name"`
	AuthorSeed     string `json:"author_seed"`
	Group          string `json:"group"`
	ID             string `json:"id"`
	Head           string `json:"head"`
	Time           int64  `json:"time,string"`
	Body           string `json:"body"` // the text itself
	Record         string `json:"record"`
	SignatureInput string `json:"signature_input"`
	Signature      string `json:"signature"`
}

type sealedVectors struct {
	Comment string         `json:"comment"`
	Sealed  []sealedVector `json:"sealed"`
}

type sealedVector struct {
	Name       string `json:"name"`
	Group      string `json:"group"`
	AuthorSeed string `json:"author_seed"`
	Epoch      uint64 `json:"epoch,string"`
	KeyID      string `json:"key_id"`
	SenderKey  string `json:"sender_key"`
	MessageID  string `json:"message_id"`
	Record     string `json:"record"`
	Signature  string `json:"signature"`
	// The derivation, step by step.
	MessageKeyInfo string `json:"message_key_info"`
	MessageKey     string `json:"message_key"`
	AAD            string `json:"aad"`
	Nonce          string `json:"nonce"`
	Ciphertext     string `json:"ciphertext"`
	// The key header; empty lists when the message has none.
	HeaderPlaintext string   `json:"header_plaintext"`
	RecipientSeeds  []string `json:"recipient_seeds"`
	Recipients      []string `json:"recipients"` // ed25519 keys, canonical order
	OutsiderSeed    string   `json:"outsider_seed"`
	Sealed          string   `json:"sealed"`
}

type signatureVectors struct {
	Comment    string            `json:"comment"`
	Signatures []signatureVector `json:"signatures"`
}

// signatureVector is one case of the signature rule (docs/PROTOCOL.md,
// section Signatures): whether the signature of message by public_key is
// accepted.
type signatureVector struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
	Valid     bool   `json:"valid"`
}

type chainVectors struct {
	Comment string        `json:"comment"`
	Chains  []chainVector `json:"chains"`
}

type chainVector struct {
	Name    string      `json:"name"`
	Group   string      `json:"group"`
	Initial string      `json:"initial_head"`
	Entries []chainLink `json:"entries"`
}

type chainLink struct {
	Index uint64 `json:"index,string"`
	Entry string `json:"entry"`
	Head  string `json:"head"`
}

var errorNames = map[string]error{
	"malformed": ErrMalformed,
	"version":   ErrVersion,
	"signature": ErrSignature,
	"too-large": ErrTooLarge,
}

var hx = hex.EncodeToString

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q in a vector: %v", s, err)
	}
	return b
}

// idFromHex returns the identity of a seed given in hex.
func idFromHex(t *testing.T, s string) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(unhex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func genIdentityVectors(t *testing.T) identityVectors {
	v := identityVectors{Comment: vectorComment}
	for n := byte(1); n <= 4; n++ {
		id := testID(t, n)
		p := id.Public()
		v.Identities = append(v.Identities, identityVector{
			Seed:         hx(seed(n)),
			Private:      hx(id.Private()),
			SecretKey:    id.SecretKey(),
			SignPublic:   hx(p.Sign[:]),
			BoxPublic:    hx(p.Box[:]),
			PublicID:     p.String(),
			AgeRecipient: p.AgeRecipient(),
			Fingerprint:  p.Fingerprint(),
		})
	}
	for _, pair := range [][2]byte{{1, 2}, {2, 1}, {1, 3}, {3, 4}} {
		a, b := testID(t, pair[0]).Public(), testID(t, pair[1]).Public()
		v.SafetyNumbers = append(v.SafetyNumbers, safetyVector{A: a.String(), B: b.String(), SafetyNumber: identity.SafetyNumber(a, b)})
	}
	return v
}

func vecBatches() []batchVector {
	raftLike := [][]byte{
		bytes.Repeat([]byte{0x08, 0x03}, 15),
		bytes.Repeat([]byte{0x10, 0x02, 0x18}, 10),
		bytes.Repeat([]byte{0x20}, 30),
	}
	return []batchVector{
		{Name: "empty", Items: []string{}},
		{Name: "empty item and text", Items: []string{"", hx([]byte("hello"))}},
		{Name: "three raft-like messages", Items: []string{hx(raftLike[0]), hx(raftLike[1]), hx(raftLike[2])}},
	}
}

func genEnvelopeVectors(t *testing.T) envelopeVectors {
	v := envelopeVectors{Comment: vectorComment, Domain: hx([]byte(envelopeDomain)), Versions: []int{Version}}
	v.Batches = vecBatches()
	for i := range v.Batches {
		items := [][]byte{}
		for _, s := range v.Batches[i].Items {
			items = append(items, unhex(t, s))
		}
		b, err := EncodeBatch(items)
		if err != nil {
			t.Fatal(err)
		}
		v.Batches[i].Encoded = hx(b)
	}
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i)
	}
	cases := []struct {
		name   string
		signer byte
		e      Envelope
	}{
		{"ping to a peer", 1, Envelope{Type: TypePing, Group: testGroup, To: testID(t, 2).Public().Sign, Counter: vecCounter, Time: vecTime, Payload: []byte{}}},
		{"chat to the group", 2, Envelope{Type: TypeChat, Group: testGroup, Counter: vecCounter + 1, Time: vecTime + 1000, Payload: payload}},
		{"batch between peers", 3, Envelope{Type: TypeBatch, To: testID(t, 1).Public().Sign, Counter: vecCounter + 2, Time: vecTime + 2000, Payload: unhex(t, v.Batches[2].Encoded)}},
		{"extreme values", 4, Envelope{Type: TypePromote, Group: GroupID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Counter: math.MaxUint64, Time: -1, Payload: []byte{0}}},
	}
	for _, c := range cases {
		e := c.e
		frame := mustSign(t, testID(t, c.signer), &e)
		v.Valid = append(v.Valid, envelopeVector{
			Name:           c.name,
			SignerSeed:     hx(seed(c.signer)),
			Type:           uint8(e.Type),
			TypeName:       e.Type.String(),
			Group:          hx(e.Group[:]),
			To:             hx(e.To[:]),
			Counter:        e.Counter,
			Time:           e.Time,
			Payload:        hx(e.Payload),
			Body:           hx(frame[headerSize:]),
			SignatureInput: hx(signedEnvelope(frame[:1+keySize], frame[headerSize:])),
			Frame:          hx(frame),
		})
	}

	alice := testID(t, 1)
	good := unhex(t, v.Valid[0].Frame)
	body := good[headerSize:]
	to := testID(t, 2).Public().Sign
	// Bodies the encoder never writes, each signed properly, so that only
	// the decoder can reject them. good's body is
	// 86 03 50<group> 5820<to> 1b<counter> 1b<time> 40.
	groupAt := 2
	ctr := body[2+17+34:]
	if ctr[0] != 0x1b {
		t.Fatalf("vector body layout changed: %x", body)
	}
	nonShortest := bytes.Clone(body)
	nonShortest[1] = 0x18
	nonShortest = slices.Insert(nonShortest, 2, 0x03)
	shortGroup := slices.Concat(body[:groupAt], []byte{0x4f}, body[groupAt+1:groupAt+16], body[groupAt+17:])
	type0 := bytes.Clone(body)
	type0[1] = 0x00
	array7 := append([]byte{0x87}, append(bytes.Clone(body[1:]), 0x00)...)
	indefPayload := append(bytes.Clone(body[:len(body)-1]), 0x5f, 0x40, 0xff)
	nullPayload := append(bytes.Clone(body[:len(body)-1]), 0xf6)
	flipped := bytes.Clone(good)
	flipped[1+keySize+10] ^= 0x01
	otherSender := bytes.Clone(good)
	copy(otherSender[1:], to[:])
	v.Invalid = []invalidFrame{
		{"version 2", hx(signRaw(alice, 2, body)), "version"},
		{"version 0", hx(signRaw(alice, 0, body)), "version"},
		{"header cut", hx(good[:headerSize-1]), "malformed"},
		{"header only", hx(good[:headerSize]), "malformed"},
		{"body cut by one byte", hx(good[:len(good)-1]), "signature"},
		{"signature byte flipped", hx(flipped), "signature"},
		{"sender replaced", hx(otherSender), "signature"},
		{"signed without the domain string", hx(append(append(bytes.Clone(good[:1+keySize]), alice.Sign(append(bytes.Clone(good[:1+keySize]), body...))...), body...)), "signature"},
		{"non-shortest type", hx(signRaw(alice, Version, nonShortest)), "malformed"},
		{"trailing byte in body", hx(signRaw(alice, Version, append(bytes.Clone(body), 0x00))), "malformed"},
		{"group of 15 bytes", hx(signRaw(alice, Version, shortGroup)), "malformed"},
		{"type 0", hx(signRaw(alice, Version, type0)), "malformed"},
		{"array of 7", hx(signRaw(alice, Version, array7)), "malformed"},
		{"indefinite-length payload", hx(signRaw(alice, Version, indefPayload)), "malformed"},
		{"null payload", hx(signRaw(alice, Version, nullPayload)), "malformed"},
	}
	return v
}

type recordCase struct {
	name   string
	author byte
	m      Message
}

func recordCases() []recordCase {
	id := [16]byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf}
	return []recordCase{
		{"hello", 1, Message{Group: testGroup, ID: id, Head: NewChain(testGroup).Head, Time: vecTime, Body: []byte("hello, world")}},
		{"unicode body", 2, Message{Group: testGroup, ID: [16]byte{1}, Head: [32]byte{0xff}, Time: vecTime + 5, Body: []byte("grüße 👋 — ✓")}},
		{"empty body, negative time", 3, Message{Group: GroupID{}, ID: [16]byte{}, Time: -1, Body: []byte{}}},
	}
}

func genMessageVectors(t *testing.T) messageVectors {
	v := messageVectors{Comment: vectorComment}
	for _, c := range recordCases() {
		m := c.m
		author := testID(t, c.author)
		m.Author = author.Public()
		record, err := encodeRecord(&m)
		if err != nil {
			t.Fatal(err)
		}
		v.Records = append(v.Records, recordVector{
			Name:           c.name,
			AuthorSeed:     hx(seed(c.author)),
			Group:          hx(m.Group[:]),
			ID:             hx(m.ID[:]),
			Head:           hx(m.Head[:]),
			Time:           m.Time,
			Body:           string(m.Body),
			Record:         hx(record),
			SignatureInput: hx(signedRecord(record)),
			Signature:      hx(author.Sign(signedRecord(record))),
		})
	}
	return v
}

// vecEpoch is the epoch of the sealed vectors.
const vecEpoch = 42

// vecKey is the fixed sender key of author's messages in the vectors.
func vecKey(author *identity.Identity, epoch uint64) *SenderKey {
	k := &SenderKey{Group: testGroup, Sender: author.Public().Sign, Epoch: epoch}
	for i := range k.ID {
		k.ID[i] = byte(0x60 + i)
	}
	for i := range k.Key {
		k.Key[i] = byte(0xc0+i) ^ author.Public().Sign[0]
	}
	return k
}

func genSealedVectors(t *testing.T) sealedVectors {
	v := sealedVectors{Comment: vectorComment + ". The sealed messages are generated with crypto/rand seeded (testing/cryptotest.SetGlobalRandom, seed 1)."}
	cases := []struct {
		name       string
		rec        int    // index into recordCases
		recipients []byte // of the key header; nil for none
		outsider   byte
	}{
		{"key header to three members", 0, []byte{1, 2, 3}, 4},
		{"no key header", 0, nil, 0},
		{"key header to five, author not among them", 1, []byte{5, 4, 3, 1, 6}, 2},
	}
	for _, c := range cases {
		rc := recordCases()[c.rec]
		m := rc.m
		author := testID(t, rc.author)
		key := vecKey(author, vecEpoch)
		var rs []identity.PublicID
		seeds, keys := []string{}, []string{}
		for _, n := range c.recipients {
			rs = append(rs, testID(t, n).Public())
			seeds = append(seeds, hx(seed(n)))
		}
		sealed, err := sealMessageTo(author, &m, key, rs, SealedVersion)
		if err != nil {
			t.Fatal(err)
		}
		w, err := decodeSealed(sealed)
		if err != nil {
			t.Fatal(err)
		}
		o, err := OpenMessage(key, m.Group, sealed, m.Author.Sign, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(rs, identity.PublicID.Compare)
		for _, r := range rs {
			keys = append(keys, hx(r.Sign[:]))
		}
		sv := sealedVector{
			Name:           c.name,
			Group:          hx(m.Group[:]),
			AuthorSeed:     hx(seed(rc.author)),
			Epoch:          key.Epoch,
			KeyID:          hx(key.ID[:]),
			SenderKey:      hx(key.Key[:]),
			MessageID:      hx(m.ID[:]),
			Record:         hx(o.Record),
			Signature:      hx(o.Sig),
			MessageKeyInfo: hx(append(append([]byte(messageKeyDomain), m.Group[:]...), m.ID[:]...)),
			MessageKey:     hx(key.messageKey(m.ID)),
			AAD:            hx(key.aad()),
			Nonce:          hx(w.Nonce),
			Ciphertext:     hx(w.Ciphertext),
			RecipientSeeds: seeds,
			Recipients:     keys,
			Sealed:         hx(sealed),
		}
		if c.recipients != nil {
			sv.HeaderPlaintext = hx(key.keyPlain())
			sv.OutsiderSeed = hx(seed(c.outsider))
		}
		v.Sealed = append(v.Sealed, sv)
	}
	return v
}

func genSignatureVectors(t *testing.T) signatureVectors {
	v := signatureVectors{Comment: vectorComment}
	for _, c := range signatureCases(t) {
		v.Signatures = append(v.Signatures, signatureVector{
			Name: c.name, PublicKey: hx(c.pub), Message: hx(c.msg), Signature: hx(c.sig), Valid: c.valid,
		})
	}
	return v
}

func genChainVectors(t *testing.T) chainVectors {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	entries := []struct {
		index uint64
		entry []byte
	}{{1, []byte("genesis")}, {2, []byte{}}, {5, all}, {6, []byte{0}}}
	v := chainVectors{Comment: vectorComment}
	for _, g := range []struct {
		name  string
		group GroupID
		n     int
	}{
		{"empty", testGroup, 0},
		{"four entries with a gap", testGroup, 4},
		{"same entries, other group", GroupID{0xff}, 4},
	} {
		c := NewChain(g.group)
		cv := chainVector{Name: g.name, Group: hx(g.group[:]), Initial: hx(c.Head[:]), Entries: []chainLink{}}
		for _, e := range entries[:g.n] {
			if err := c.Append(e.index, e.entry); err != nil {
				t.Fatal(err)
			}
			cv.Entries = append(cv.Entries, chainLink{Index: e.index, Entry: hx(e.entry), Head: hx(c.Head[:])})
		}
		v.Chains = append(v.Chains, cv)
	}
	return v
}

// checkFile compares v, encoded, with the vector file name byte for byte, or
// rewrites the file under -update. It then decodes the file into out, so that
// the checks that follow read the file rather than the generator.
func checkFile(t *testing.T, name string, v, out any) {
	t.Helper()
	want, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	path := filepath.Join(vectorDir, name)
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./crypto -run TestVectors -update)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs from what this code produces at line %d:\n file: %s\n code: %s\n"+
					"If the format changed on purpose, run: go test ./crypto -run TestVectors -update", name, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length from what this code produces", name)
	}
	if err := json.Unmarshal(got, out); err != nil {
		t.Fatal(err)
	}
}

func TestVectors(t *testing.T) {
	t.Run("identity", func(t *testing.T) {
		var v identityVectors
		checkFile(t, "identity.json", genIdentityVectors(t), &v)
		for _, iv := range v.Identities {
			id := idFromHex(t, iv.Seed)
			fromSecret, err := identity.ParseSecretKey(iv.SecretKey)
			if err != nil {
				t.Fatal(err)
			}
			p, err := identity.ParsePublicID(iv.PublicID)
			if err != nil {
				t.Fatal(err)
			}
			if p != id.Public() || fromSecret.Public() != p || hx(fromSecret.Private()) != iv.Private ||
				hx(p.Sign[:]) != iv.SignPublic || hx(p.Box[:]) != iv.BoxPublic {
				t.Fatalf("identity of seed %s does not match its vector", iv.Seed)
			}
		}
		for _, sv := range v.SafetyNumbers {
			a, _ := identity.ParsePublicID(sv.A)
			b, _ := identity.ParsePublicID(sv.B)
			if identity.SafetyNumber(a, b) != sv.SafetyNumber || identity.SafetyNumber(b, a) != sv.SafetyNumber {
				t.Fatalf("safety number of %s and %s", sv.A, sv.B)
			}
		}
	})

	t.Run("envelope", func(t *testing.T) {
		var v envelopeVectors
		checkFile(t, "envelope.json", genEnvelopeVectors(t), &v)
		for _, ev := range v.Valid {
			e, err := Verify(unhex(t, ev.Frame))
			if err != nil {
				t.Fatalf("%s: %v", ev.Name, err)
			}
			signer := idFromHex(t, ev.SignerSeed).Public().Sign
			if e.Sender != signer || uint8(e.Type) != ev.Type || e.Type.String() != ev.TypeName || hx(e.Group[:]) != ev.Group ||
				hx(e.To[:]) != ev.To || e.Counter != ev.Counter || e.Time != ev.Time || hx(e.Payload) != ev.Payload {
				t.Fatalf("%s: frame decodes to %+v", ev.Name, e)
			}
		}
		for _, iv := range v.Invalid {
			want, ok := errorNames[iv.Error]
			if !ok {
				t.Fatalf("%s: unknown error name %q", iv.Name, iv.Error)
			}
			if _, err := Verify(unhex(t, iv.Frame)); !errors.Is(err, want) {
				t.Errorf("%s: Verify = %v, want %v", iv.Name, err, want)
			}
		}
		for _, bv := range v.Batches {
			items, err := DecodeBatch(unhex(t, bv.Encoded))
			if err != nil {
				t.Fatalf("%s: %v", bv.Name, err)
			}
			if len(items) != len(bv.Items) {
				t.Fatalf("%s: %d items, want %d", bv.Name, len(items), len(bv.Items))
			}
			for i := range items {
				if hx(items[i]) != bv.Items[i] {
					t.Fatalf("%s: item %d", bv.Name, i)
				}
			}
		}
	})

	t.Run("message", func(t *testing.T) {
		var v messageVectors
		checkFile(t, "message.json", genMessageVectors(t), &v)
		for _, rv := range v.Records {
			m, err := VerifyRecord(unhex(t, rv.Record), unhex(t, rv.Signature))
			if err != nil {
				t.Fatalf("%s: %v", rv.Name, err)
			}
			if m.Author != idFromHex(t, rv.AuthorSeed).Public() || hx(m.Group[:]) != rv.Group || hx(m.ID[:]) != rv.ID ||
				hx(m.Head[:]) != rv.Head || m.Time != rv.Time || string(m.Body) != rv.Body {
				t.Fatalf("%s: record decodes to %+v", rv.Name, m)
			}
		}
	})

	t.Run("signature", func(t *testing.T) {
		var v signatureVectors
		checkFile(t, "signature.json", genSignatureVectors(t), &v)
		var all checkedBatch
		for _, sv := range v.Signatures {
			pub, msg, sig := unhex(t, sv.PublicKey), unhex(t, sv.Message), unhex(t, sv.Signature)
			if got := VerifySignature(pub, msg, sig); got != sv.Valid {
				t.Errorf("%s: VerifySignature = %v, want %v", sv.Name, got, sv.Valid)
			}
			if got := checkInBatches(t, pub, msg, sig); got != sv.Valid {
				t.Errorf("%s: in a batch %v, want %v", sv.Name, got, sv.Valid)
			}
			// voi's FIPS 186-5 rule agrees, except that it takes
			// small-order keys.
			if got := fipsVerify(pub, msg, sig); got != (sv.Valid || (weakKey(pub) && got)) {
				t.Errorf("%s: the FIPS 186-5 rule = %v, want %v", sv.Name, got, sv.Valid)
			}
			all.add(pub, msg, sig, sv.Valid)
		}
		// All of them in one batch.
		all.verify(t)
	})

	t.Run("sealed", func(t *testing.T) {
		cryptotest.SetGlobalRandom(t, 1)
		var v sealedVectors
		checkFile(t, "sealed.json", genSealedVectors(t), &v)
		if len(v.Sealed) == 0 {
			t.Fatal("no sealed vectors")
		}
		for _, sv := range v.Sealed {
			sealed := unhex(t, sv.Sealed)
			var group GroupID
			copy(group[:], unhex(t, sv.Group))
			author := idFromHex(t, sv.AuthorSeed).Public().Sign
			key := &SenderKey{Group: group, Sender: author, Epoch: sv.Epoch, ID: [KeyIDSize]byte(unhex(t, sv.KeyID)), Key: [SenderKeySize]byte(unhex(t, sv.SenderKey))}
			id := [16]byte(unhex(t, sv.MessageID))
			// Each step of the derivation, from the fields alone.
			mk, err := hkdf.Key(sha256.New, key.Key[:], nil, string(unhex(t, sv.MessageKeyInfo)), 32)
			if err != nil {
				t.Fatal(err)
			}
			aad := append([]byte(sealedAADDomain), group[:]...)
			aad = append(aad, author[:]...)
			aad = binary.BigEndian.AppendUint64(aad, sv.Epoch)
			aad = append(aad, key.ID[:]...)
			if hx(mk) != sv.MessageKey || hx(key.messageKey(id)) != sv.MessageKey || hx(aad) != sv.AAD || hx(key.aad()) != sv.AAD {
				t.Fatalf("%s: message key or AAD", sv.Name)
			}
			aead, err := chacha20poly1305.NewX(mk)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := aead.Open(nil, unhex(t, sv.Nonce), unhex(t, sv.Ciphertext), aad)
			if err != nil || hx(plain) != sv.Record+sv.Signature {
				t.Fatalf("%s: the ciphertext does not open to record and signature (%v)", sv.Name, err)
			}
			info, err := ReadSealed(sealed)
			if err != nil {
				t.Fatalf("%s: %v", sv.Name, err)
			}
			if info.Epoch != sv.Epoch || info.KeyID != key.ID || len(info.Recipients) != len(sv.Recipients) || len(sv.Recipients) != len(sv.RecipientSeeds) {
				t.Fatalf("%s: ReadSealed = %+v", sv.Name, info)
			}
			for i, k := range info.Recipients {
				if hx(k[:]) != sv.Recipients[i] {
					t.Fatalf("%s: recipient #%d", sv.Name, i)
				}
			}
			for _, s := range sv.RecipientSeeds {
				k, err := OpenSenderKey(idFromHex(t, s), group, sealed, author)
				if err != nil {
					t.Fatalf("%s: recipient %s: %v", sv.Name, s[:2], err)
				}
				if !k.Equal(key) || hx(k.keyPlain()) != sv.HeaderPlaintext {
					t.Fatalf("%s: recipient %s opens another key", sv.Name, s[:2])
				}
			}
			if sv.OutsiderSeed != "" {
				if _, err := OpenSenderKey(idFromHex(t, sv.OutsiderSeed), group, sealed, author); !errors.Is(err, ErrNotRecipient) {
					t.Fatalf("%s: outsider: %v, want %v", sv.Name, err, ErrNotRecipient)
				}
			}
			o, err := OpenMessage(key, group, sealed, author, id)
			if err != nil {
				t.Fatalf("%s: %v", sv.Name, err)
			}
			if hx(o.Record) != sv.Record || hx(o.Sig) != sv.Signature {
				t.Fatalf("%s: opens to another record", sv.Name)
			}
		}
	})

	t.Run("chain", func(t *testing.T) {
		var v chainVectors
		checkFile(t, "chain.json", genChainVectors(t), &v)
		for _, cv := range v.Chains {
			var g GroupID
			copy(g[:], unhex(t, cv.Group))
			c := NewChain(g)
			if hx(c.Head[:]) != cv.Initial {
				t.Fatalf("%s: initial head", cv.Name)
			}
			for _, l := range cv.Entries {
				if err := c.Append(l.Index, unhex(t, l.Entry)); err != nil {
					t.Fatal(err)
				}
				if hx(c.Head[:]) != l.Head {
					t.Fatalf("%s: head after index %d", cv.Name, l.Index)
				}
			}
		}
	})
}
