package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Exit codes of the contract.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitAccepted = 3 // send, invite: accepted (the outbox, the invite queue), not yet committed
)

// exitError is an error with an exit code and a hint: the fix, where there is
// one. Commands return it; main prints "demes: error: ..." and
// "demes: hint: ..." and exits with the code. err may be nil for an exit code
// that is not a failure (send's 3), which prints no error line.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// errorText is what the error line shows: nothing for an exitError that only
// carries a code.
func errorText(err error) string {
	var ee *exitError
	if errors.As(err, &ee) && ee.err == nil {
		return ""
	}
	return err.Error()
}

// withHint marks err as a failure (exit 1) with a fix for the user.
func withHint(err error, hint string) error {
	return &exitError{code: exitFailure, err: err, hint: hint}
}

// failf is a failure with a hint, formatted.
func failf(hint, format string, args ...any) error {
	return withHint(fmt.Errorf(format, args...), hint)
}

// usageError is bad usage (exit 2).
func usageError(err error, hint string) error {
	return &exitError{code: exitUsage, err: err, hint: hint}
}

// errHelpShown ends a command that printed its help because of -h: exit 0.
var errHelpShown = errors.New("help shown")

// fileError is a file a person named (name: the path, with what it is for
// before it) that could not be opened or read, said in words: Go's error
// names the system call ("open x: no such file or directory"). It wraps
// that error, so errors.Is(err, fs.ErrNotExist) still holds.
type fileError struct {
	name string
	err  error
}

func (e *fileError) Error() string { return e.name + ": " + openProblem(e.err) }

func (e *fileError) Unwrap() error { return e.err }

// openProblem says in words why a file could not be opened: Go's error
// names the system call ("open missing.json: no such file or directory").
func openProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "there is no such file"
	case errors.Is(err, fs.ErrPermission):
		return "this user may not read it"
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error() // the path is said before it
	}
	return err.Error()
}
