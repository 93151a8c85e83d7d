// Command demes runs and drives a DeMeS node: a decentralized, end-to-end
// encrypted group chat.
//
// Run `demes help` for the commands; the stable interface (names, flags, exit
// codes, JSON fields) is the command-line contract in the README.
//
// # Adding a command
//
// Write one file with a func(ctx, args, stdout, stderr) error that builds its
// flags with [newFlags] and returns errors (an [*exitError] for a hint or a
// different exit code), then add one line to [commands].
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/rs/zerolog"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand: its name, a one-line summary for `demes help`,
// and the function that runs it with the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands in the order `demes help` shows them.
var commands = []command{
	{"keygen", "create the identity in the home", runKeygen},
	{"id", "print this home's public id", runID},
	{"group", "group create NAME: create a group with this node as its host; group settings: show or change its settings; group rename NAME (admins)", runGroup},
	{"groups", "list this node's groups", runGroups},
	{"invite", "authorize a public id to join a group; prints the invite code (--revoke: revoke one)", runInvite},
	{"invites", "list a group's open invites", runInvites},
	{"join", "join a group through an invite code", runJoin},
	{"keeper", "keeper add ADDRESS|PUBLIC_ID: add a keeper (an always-on node that holds the log and reads nothing) to a group (admins)", runKeeper},
	{"reconnect", "catch up from a current member (its peer URL or an invite code) after a long absence", runReconnect},
	{"leave", "leave a group; this node keeps its history", runLeave},
	{"remove", "remove a member from a group (admins)", runRemove},
	{"admin", "admin add|remove PUBLIC_ID: grant or withdraw a member's admin role (admins)", runAdmin},
	{"send", "send a chat message; returns once it is committed", runSend},
	{"download", "write the file a message carries (-o FILE; - for stdout)", runDownload},
	{"messages", "print a group's messages in group order", runMessages},
	{"react", "react to a message with an emoji (--remove takes it back)", runReact},
	{"edit", "give one of your messages new text", runEdit},
	{"delete", "delete one of your messages", runDelete},
	{"rekey", "ask every member of a group for new sender keys (after a suspected compromise)", runRekey},
	{"reform", "continue a group halted after a fork in a new group without the member that forked it (or join the one another member started)", runReform},
	{"receipts", "receipts [on|off]: show or change whether you share read receipts (and see the members')", runReceipts},
	{"search", "search TEXT: a group's messages that hold TEXT, the newest first", runSearch},
	{"status", "show the node, its groups, hosts and members", runStatus},
	{"transcript", "export the signed transcript of a group", runTranscript},
	{"verify", "check a transcript offline", runVerify},
	{"serve", "run the node until SIGINT/SIGTERM; prints the UI address", runServe},
	{"relay", "run a relay-only node: members behind home routers reach each other through it (no group keys)", runRelay},
	{"ui", "print the running node's UI address with its token (--open: open it)", runUI},
	{"backup", "write a backup of the running node's home, sealed with a passphrase or to its identity", runBackup},
	{"restore", "restore a home from a backup", runRestore},
	{"health", "ask a running node's metrics listener whether it is healthy (--ready: ready), for health checks", runHealth},
	{"demo", "run N nodes in one group in this process, ready to chat in the browser", runDemo},
	{"bench", "measure failover, latency, throughput and scaling on loopback", runBench},
	{"version", "print the build's version, commit and Go toolchain", runVersion},
}

func main() {
	// Log times to the microsecond: a failover takes a fraction of a
	// second, and the logs of several nodes are read side by side.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000000Z07:00"
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and turns its error into the exit code
// and the stderr lines of the contract.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			// `demes help send` is `demes send -h`.
			return run(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	case "-version", "--version":
		name, args = "version", append([]string{"version"}, args[1:]...)
	}
	cmd, ok := lookup(name)
	if !ok {
		return report(stderr, usageError(fmt.Errorf("unknown command %q", name), "run 'demes help' for the list of commands"))
	}
	return report(stderr, cmd.run(ctx, args[1:], stdout, stderr))
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage prints the list of commands.
func usage(w io.Writer) {
	fmt.Fprint(w, `demes: a decentralized, end-to-end encrypted group chat

usage: demes COMMAND [flags] [args]

commands:
`)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command takes --home DIR (default $DEMES_HOME, else ~/.demes).
Flags may come before or after the arguments; "--" ends the flags.
Run 'demes help COMMAND' for a command's flags.

exit codes: 0 ok, 1 failure, 2 bad usage, 3 accepted but not yet committed (send)
`)
}

// report prints err as the contract wants it and returns the exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelpShown) {
		return exitOK
	}
	code, hint := exitFailure, ""
	var ee *exitError
	if errors.As(err, &ee) {
		code, hint = ee.code, ee.hint
	}
	if msg := errorText(err); msg != "" {
		fmt.Fprintf(stderr, "demes: error: %s\n", oneLine(msg))
	}
	if hint != "" {
		fmt.Fprintf(stderr, "demes: hint: %s\n", oneLine(hint))
	}
	return code
}

// oneLine keeps an error on one line, as scripts reading stderr expect,
// and without control characters: an error can quote what others chose
// (a member's display name in a transcript that verify refuses), and an
// escape sequence in it could rewrite the terminal ("verified" over the
// error).
func oneLine(s string) string {
	s = strings.TrimSpace(clean(s, ""))
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
