package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// cmdFlags is a subcommand's flag set with the flags every subcommand has.
type cmdFlags struct {
	*flag.FlagSet
	// synopsis is the usage line after "demes ", as in the contract:
	// "send TEXT [--group G] [--timeout D]".
	synopsis string
	stdout   io.Writer
	home     string
}

// newFlags starts the flag set of the subcommand whose usage line is
// synopsis, with --home already defined. stdout receives the help for -h.
func newFlags(synopsis string, stdout io.Writer) *cmdFlags {
	name, _, _ := strings.Cut(synopsis, " ")
	f := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, stdout: stdout}
	// The flag package would print its own complaints and usage to stderr;
	// errors go through report instead, so they look like every other error.
	f.SetOutput(io.Discard)
	f.StringVar(&f.home, "home", "", "the node's home `DIR` (default $DEMES_HOME, else ~/.demes)")
	return f
}

// parse parses args, flags and positionals in any order, and returns the
// positionals. "-h" prints the help and returns errHelpShown; a bad flag is a
// usage error.
func (f *cmdFlags) parse(args []string) ([]string, error) {
	pos, err := parseInterspersed(f.FlagSet, args)
	if errors.Is(err, flag.ErrHelp) {
		f.printHelp(f.stdout)
		return nil, errHelpShown
	}
	if err != nil {
		// Text that starts with a dash ("-5 degrees today") reads as a
		// flag: say how to pass it.
		if arg, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: "); ok && textLike(arg) {
			return nil, usageError(fmt.Errorf("%q reads as a flag", arg), fmt.Sprintf("text that starts with - goes after --: demes %s -- %q", f.Name(), arg))
		}
		return nil, f.usageErr(f.plainFlagError(err))
	}
	// "--home --name foo": the flag package took --name for the value of
	// --home, and "foo" then read as an unexpected argument (helper-58's
	// QA pass). A value that is another flag of the command was none.
	var taken error
	f.Visit(func(fl *flag.Flag) {
		v := fl.Value.String()
		name, _, _ := strings.Cut(strings.TrimLeft(v, "-"), "=")
		if taken == nil && strings.HasPrefix(v, "-") && name != "" && f.Lookup(name) != nil {
			taken = fmt.Errorf("--%s needs a value (it took %q, another flag)", fl.Name, v)
		}
	})
	if taken != nil {
		return nil, f.usageErr(taken)
	}
	return pos, nil
}

// flagValueErr matches the flag package's complaint about a value.
var flagValueErr = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-([^:]+): (.*)$`)

// plainFlagError says a complaint of the flag package in the words of the
// rest of the CLI: the flag as people type it (--timeout) and what value
// would do, not `invalid value "soon" for flag -timeout: parse error`. A
// flag whose own check gave a reason keeps it.
func (f *cmdFlags) plainFlagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s needs a value", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("unknown flag --%s", strings.TrimPrefix(name, "-"))
	}
	m := flagValueErr.FindStringSubmatch(msg)
	if m == nil {
		return err
	}
	val, name, why := m[1], m[2], m[3]
	switch why {
	case "parse error":
	case "value out of range":
		return fmt.Errorf("--%s: %q is out of range", name, val)
	default:
		return fmt.Errorf("--%s: %q: %s", name, val, why)
	}
	kind := "a valid value"
	if fl := f.Lookup(name); fl != nil {
		if g, ok := fl.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case bool:
				kind = "true or false"
			case time.Duration:
				if durationSyntax.MatchString(val) {
					// Written as one, but past what a duration holds:
					// the flag package says "parse error" for both.
					return fmt.Errorf("--%s: %q is too long: a duration is at most 2562047h (about 292 years)", name, val)
				}
				kind = "a duration such as 30s, 5m or 2h"
			case int, int64:
				kind = "a whole number"
			case uint, uint64:
				kind = "a whole number of 0 or more" // "-1" is a whole number
			}
		}
	}
	return fmt.Errorf("--%s: %q is not %s", name, val, kind)
}

// durationSyntax matches what time.ParseDuration takes, whatever its size.
var durationSyntax = regexp.MustCompile(`^[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$`)

// textLike reports whether arg, taken for a flag, looks like text instead:
// a space in it, or a number after its dash.
func textLike(arg string) bool {
	return strings.ContainsAny(arg, " \t") || len(arg) > 1 && arg[1] >= '0' && arg[1] <= '9'
}

// usageErr is a usage error (exit 2) whose hint is the command's usage line.
func (f *cmdFlags) usageErr(err error) error {
	return usageError(err, "usage: demes "+f.synopsis+" (see 'demes help "+f.Name()+"')")
}

// usagef is a formatted usageErr.
func (f *cmdFlags) usagef(format string, args ...any) error {
	return f.usageErr(fmt.Errorf(format, args...))
}

// wantArgs checks the number of positional arguments.
func (f *cmdFlags) wantArgs(pos []string, n int, what string) error {
	switch {
	case len(pos) < n:
		return f.usagef("missing %s", what)
	case len(pos) > n:
		return f.usagef("unexpected argument %q", pos[n])
	}
	return nil
}

func (f *cmdFlags) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: demes %s\n\nflags:\n", f.synopsis)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

// Home returns the home directory: --home, else $DEMES_HOME, else ~/.demes.
// A file there is a failure said in words: each command went on to say
// "open HOME/identity: not a directory", or the like, in Go's.
func (f *cmdFlags) Home() (string, error) {
	var home, from string
	switch {
	case f.home != "":
		home, from = filepath.Clean(f.home), "--home"
	case os.Getenv("DEMES_HOME") != "":
		home, from = filepath.Clean(os.Getenv("DEMES_HOME")), "DEMES_HOME"
	default:
		dir, err := os.UserHomeDir()
		if err != nil {
			return "", withHint(fmt.Errorf("cannot find the home directory for ~/.demes: %w", err), "name one with --home DIR or DEMES_HOME")
		}
		home, from = filepath.Join(dir, ".demes"), "the default home"
	}
	if st, err := os.Stat(home); err == nil && !st.IsDir() {
		return "", failf("name a directory with --home DIR (keygen creates one that does not exist)", "%s %s is a file, not a directory", from, home)
	}
	return home, nil
}

// parseInterspersed parses flags that may stand before, between or after the
// positional arguments, which the flag package alone does not allow: it stops
// at the first positional. So parse, take that positional, and parse the rest
// again. A "--" ends the flags: everything after it is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; endedByDashDash(fs, consumed) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedByDashDash reports whether fs.Parse stopped because of a "--" at the
// end of consumed, rather than a "--" that was the value of a flag
// ("--group --"). consumed starts at a flag or positional, never a value, so
// stepping over flags and their values from its start finds out.
func endedByDashDash(fs *flag.FlagSet, consumed []string) bool {
	if len(consumed) == 0 || consumed[len(consumed)-1] != "--" {
		return false
	}
	for i := 0; i < len(consumed); i++ {
		a := consumed[i]
		if a == "--" {
			return i == len(consumed)-1
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if fl := fs.Lookup(name); fl != nil && !isBoolFlag(fl) {
			i++ // the next argument is this flag's value
		}
	}
	return false
}

func isBoolFlag(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
