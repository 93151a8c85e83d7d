package identity

import "github.com/demes/demes/internal/bech32"

func encodeRaw(hrp string, b []byte) (string, error) { return bech32.Encode(hrp, b) }
