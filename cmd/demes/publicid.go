package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/demes/demes/identity"
)

// Public ids given on the command line (remove, admin, reform --without,
// invite, keeper add, relay --allow, verify --trust) are checked here
// before the node is asked, so that a malformed one is refused the same
// way everywhere: bad usage, in plain words, with what a public id looks
// like, never the bech32 decoder's text.

// parsePublicIDArg parses s, a public id given as what ("member id",
// "public id"). Its error says that s is not a valid one and why; callers
// make it bad usage with publicIDHint.
func parsePublicIDArg(s, what string) (identity.PublicID, error) {
	pub, err := identity.ParsePublicID(s)
	if err != nil {
		return identity.PublicID{}, fmt.Errorf("%q is not a valid %s: %s", short(s), what, publicIDProblem(err))
	}
	return pub, nil
}

// publicIDProblem is what is wrong with a public id that
// identity.ParsePublicID refused, in words for a person.
func publicIDProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "parse public id: ")
	switch {
	case errors.Is(err, identity.ErrPrefix):
		return `it does not start with "demes1"`
	case errors.Is(err, identity.ErrChecksum):
		return "its checksum does not match: a character in it was mistyped"
	case errors.Is(err, identity.ErrLength):
		return strings.TrimPrefix(msg, identity.ErrLength.Error()+": ")
	case errors.Is(err, identity.ErrMistyped):
		return strings.TrimPrefix(msg, identity.ErrMistyped.Error()+": ")
	}
	return msg
}

// publicIDHint says what a public id looks like and, in where, where to
// find the right one: whose is "the member's", "their".
func publicIDHint(whose, where string) string {
	return fmt.Sprintf("give %s whole public id: \"demes1\" and %d more letters and digits, %s", whose, identity.PublicIDLen-len(identity.PublicHRP)-1, where)
}

// memberIDArg parses the public id of a member of the group: bad usage
// (exit 2) when it is malformed, as a malformed message id is; a
// well-formed id of no member is the node's refusal (exit 1).
func memberIDArg(s string) (identity.PublicID, error) {
	pub, err := parsePublicIDArg(s, "member id")
	if err != nil {
		return identity.PublicID{}, usageError(err, publicIDHint("the member's", "as 'demes status --json' lists the members"))
	}
	return pub, nil
}
