package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxPassphraseFile bounds ReadPassphraseFile: a passphrase is a line, and a
// mistaken path to a large file should fail rather than be read.
const maxPassphraseFile = 64 << 10

// ReadPassphraseFile reads a passphrase from the file at path. One trailing
// newline ("\n" or "\r\n"), as editors and `echo` add, is not part of it; an
// empty passphrase is an error, since it would seal nothing.
func ReadPassphraseFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile+1))
	if err != nil {
		return nil, fmt.Errorf("read passphrase file %s: %w", path, err)
	}
	if len(b) > maxPassphraseFile {
		clear(b) // a secret, wiped as soon as it is of no use
		return nil, fmt.Errorf("read passphrase file %s: larger than %d bytes, so not a passphrase", path, maxPassphraseFile)
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("read passphrase file %s: %w", path, errEmptyPassphrase)
	}
	return b, nil
}

var errEmptyPassphrase = errors.New("the passphrase is empty")
