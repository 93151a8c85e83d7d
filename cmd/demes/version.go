package main

import (
	"context"
	"fmt"
	"io"

	"github.com/demes/demes/internal/version"
)

// runVersion prints the build's version: the module version, the commit and
// the Go toolchain, from what the toolchain recorded in the binary.
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("version [--json]", stdout)
	asJSON := f.Bool("json", false, "print version, commit, time and go as JSON")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return f.usagef("version takes no arguments")
	}
	in := version.Get()
	if *asJSON {
		return writeJSON(stdout, in)
	}
	fmt.Fprintln(stdout, "demes "+in.String())
	fmt.Fprintln(stdout, in.Version)
	return nil
}
