//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// pause stops the process with SIGSTOP: it sends nothing and answers
// nothing, while its connections stay open (the kernel still holds them),
// which is what the others see of a host whose cable was pulled.
func (p *serveProc) pause() error { return p.signal("pause", syscall.SIGSTOP) }

// resume continues a paused process with SIGCONT: the cable is back.
func (p *serveProc) resume() error { return p.signal("resume", syscall.SIGCONT) }

// signal sends sig to the running process; what names the action in errors.
func (p *serveProc) signal(what string, sig syscall.Signal) error {
	if p.cmd == nil {
		return fmt.Errorf("%s demes serve: not running", what)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s demes serve: %w", what, err)
	}
	return nil
}

// canPause reports whether pause works on this platform.
const canPause = true
