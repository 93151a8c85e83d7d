package content

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/demes/demes/state"
)

// Limits of a file message.
const (
	// MaxFileName is the longest file name, in bytes.
	MaxFileName = 255
	// MaxMediaType is the longest media type, in bytes.
	MaxMediaType = 127
	// MaxFileKey is the longest file key, in bytes (an age X25519
	// identity takes 74).
	MaxFileKey = 128
	// MaxFileSize is the largest file any DeMeS accepts in a message, in
	// bytes; a node's own limit (node.Config.MaxAttachment) is lower.
	MaxFileSize = 1 << 40
)

// fileKeyPrefix starts every file key: an age X25519 identity.
const fileKeyPrefix = "AGE-SECRET-KEY-1"

// FileRef is an attachment as its message names it: the file itself is a
// blob, the age encryption of its bytes to the identity Key, stored and
// fetched by its id, the SHA-256 of the ciphertext (docs/PROTOCOL.md,
// "Attachments"). The key is secret: it travels only inside the sealed
// message body.
type FileRef struct {
	Name     string   // the file's name, without a directory
	Type     string   // its media type, e.g. image/png
	Size     int64    // its size in bytes
	Blob     [32]byte // SHA-256 of the ciphertext
	BlobSize int64    // the ciphertext's size in bytes
	Key      string   // the age identity the blob is encrypted to
}

type fileWire struct {
	_        struct{} `cbor:",toarray"`
	Version  uint64
	Kind     uint64
	Name     string
	Type     string
	Size     uint64
	Blob     []byte
	BlobSize uint64
	Key      string
}

// MaxBlobSize is the largest ciphertext an age encryption of size bytes
// may take: a header of at most a few hundred bytes and 16 bytes per 64 KiB
// chunk.
func MaxBlobSize(size int64) int64 { return size + size/4096 + 4096 }

// Check reports whether f is a well-formed attachment.
func (f *FileRef) Check() error {
	if err := CheckFileName(f.Name); err != nil {
		return err
	}
	if f.Type == "" || len(f.Type) > MaxMediaType || strings.IndexFunc(f.Type, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 || !strings.Contains(f.Type, "/") {
		return fmt.Errorf("%w: media type %q", ErrInvalid, f.Type)
	}
	if f.Size < 0 || f.Size > MaxFileSize {
		return fmt.Errorf("%w: a file of %d bytes", ErrInvalid, f.Size)
	}
	if f.BlobSize <= f.Size || f.BlobSize > MaxBlobSize(f.Size) {
		return fmt.Errorf("%w: an encrypted file of %d bytes for %d bytes", ErrInvalid, f.BlobSize, f.Size)
	}
	if f.Blob == ([32]byte{}) {
		return fmt.Errorf("%w: a file without its blob id", ErrInvalid)
	}
	if !strings.HasPrefix(f.Key, fileKeyPrefix) || len(f.Key) > MaxFileKey {
		return fmt.Errorf("%w: a file key that is not an age identity", ErrInvalid)
	}
	return nil
}

// CheckFileName reports whether name may name an attachment: 1 to
// MaxFileName bytes of UTF-8, no directory (no slash or backslash), not
// "." or "..", no control characters.
func CheckFileName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: file name %q", ErrInvalid, name)
	case len(name) > MaxFileName:
		return fmt.Errorf("%w: a file name of %d bytes, the limit is %d", ErrInvalid, len(name), MaxFileName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: file name is not UTF-8", ErrInvalid)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%w: a file name holds a slash", ErrInvalid)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: a file name holds control characters", ErrInvalid)
	}
	return nil
}

func encodeFile(f *FileRef) ([]byte, error) {
	w := fileWire{Version: Version, Kind: uint64(File), Name: f.Name, Type: f.Type, Size: uint64(f.Size), Blob: f.Blob[:], BlobSize: uint64(f.BlobSize), Key: f.Key}
	return wrap(&w, "file message")
}

// parseFile decodes the CBOR b of a file message (canonical only, as
// state.Decode reads it) and checks it.
func parseFile(b []byte) (Content, error) {
	var w fileWire
	if err := state.Decode(b, &w); err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(w.Blob) != 32 {
		return Content{}, fmt.Errorf("%w: a blob id of %d bytes", ErrMalformed, len(w.Blob))
	}
	if w.Size > MaxFileSize || w.BlobSize > uint64(MaxBlobSize(MaxFileSize)) {
		return Content{}, fmt.Errorf("%w: a file of %d bytes", ErrMalformed, w.Size)
	}
	f := &FileRef{Name: w.Name, Type: w.Type, Size: int64(w.Size), Blob: [32]byte(w.Blob), BlobSize: int64(w.BlobSize), Key: w.Key}
	c := Content{Kind: File, File: f}
	if err := c.Check(); err != nil {
		return Content{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c, nil
}
