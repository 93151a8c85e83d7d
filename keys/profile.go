package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Profile is what a node tells others about its person besides the keys: the
// file profile.json in the home. It is not secret, but it is personal, so it
// is written 0600 like the identity.
type Profile struct {
	// Name is the display name others see next to the fingerprint.
	Name string `json:"name,omitempty"`
}

// MaxNameLen bounds a display name in bytes; it travels in every member list.
const MaxNameLen = 64

// LoadProfile reads the profile at path. A missing file is an empty profile,
// since the name is optional.
func LoadProfile(path string) (Profile, error) {
	var p Profile
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("load profile: %w", err)
	}
	defer f.Close()
	if err := json.NewDecoder(io.LimitReader(f, MaxFileSize)).Decode(&p); err != nil {
		return p, fmt.Errorf("load profile %s: %w", path, err)
	}
	return p, nil
}

// SaveProfile writes p to path atomically, mode 0600, replacing any profile
// there.
func SaveProfile(path string, p Profile) error {
	if err := CheckName(p.Name); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	if err := writeAtomic(path, append(b, '\n'), 0o600, true); err != nil {
		return fmt.Errorf("save profile: %w", err)
	}
	return nil
}

// CheckName reports whether name can be a display name: at most [MaxNameLen]
// bytes of UTF-8 without control characters, which would garble a terminal or
// a member list (escape sequences, newlines).
func CheckName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("the name is %d bytes, at most %d fit", len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return errors.New("the name is not valid UTF-8")
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return errors.New("the name contains control characters")
	}
	return nil
}
