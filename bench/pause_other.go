//go:build !unix

package bench

import "errors"

var errNoPause = errors.New("pausing a process (SIGSTOP) is not available on this platform")

// pause is not available on this platform.
func (p *serveProc) pause() error { return errNoPause }

// resume is not available on this platform.
func (p *serveProc) resume() error { return errNoPause }

// canPause reports whether pause works on this platform.
const canPause = false
