//go:build unix

package bench

import (
	"fmt"
	"syscall"
)

// pause stops the process with SIGSTOP: it sends nothing and answers
// nothing, while its connections stay open (the kernel still holds them),
// which is what the others see of a host whose cable was pulled.
func (p *serveProc) pause() error {
	if p.cmd == nil {
		return fmt.Errorf("pause demes serve: not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("pause demes serve: %w", err)
	}
	return nil
}

// resume continues a paused process with SIGCONT: the cable is back.
func (p *serveProc) resume() error {
	if p.cmd == nil {
		return fmt.Errorf("resume demes serve: not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("resume demes serve: %w", err)
	}
	return nil
}

// canPause reports whether pause works on this platform.
const canPause = true
