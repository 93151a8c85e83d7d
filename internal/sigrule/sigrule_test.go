package sigrule

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// TestVectors checks Verify, which crypto/prekey uses, against the signature
// vectors that crypto.VerifySignature and crypto.SignatureBatch are checked
// against (testdata/crypto/signature.json): one rule for every signature.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile("../../testdata/crypto/signature.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Signatures []struct {
			Name      string `json:"name"`
			PublicKey string `json:"public_key"`
			Message   string `json:"message"`
			Signature string `json:"signature"`
			Valid     bool   `json:"valid"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, sv := range v.Signatures {
		pub, _ := hex.DecodeString(sv.PublicKey)
		msg, _ := hex.DecodeString(sv.Message)
		sig, _ := hex.DecodeString(sv.Signature)
		if got := Verify(pub, msg, sig); got != sv.Valid {
			t.Errorf("%s: Verify = %v, want %v", sv.Name, got, sv.Valid)
		}
		if sv.Valid {
			valid++
		}
	}
	if valid == 0 || valid == len(v.Signatures) {
		t.Fatalf("%d of %d vectors valid: the file does not test the rule", valid, len(v.Signatures))
	}
}
