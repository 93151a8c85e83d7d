// Package version tells which build of demes is running, from what the Go
// toolchain records in the binary (runtime/debug.ReadBuildInfo): the module
// version, the commit and its time, and whether the tree had changes.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what a build says of itself.
type Info struct {
	// Version is the module version ("v1.2.3"), or "(devel)" for a build
	// from a working tree.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, with
	// "+dirty" when the tree had uncommitted changes; empty when the
	// build recorded none (go run, go test).
	Commit string `json:"commit"`
	// Time is the commit's time (RFC 3339), empty when unknown.
	Time string `json:"time,omitempty"`
	// Go is the toolchain that built it.
	Go string `json:"go"`
}

// Version and Commit, when set at link time, override what the build info
// says. A release build from a tree without VCS metadata (a container
// build context, a source archive) has no module version of its own, so
// scripts/release.sh and the Dockerfile stamp them:
//
//	go build -ldflags "-X github.com/demes/demes/internal/version.Version=v1.2.3
//	    -X github.com/demes/demes/internal/version.Commit=0123abcd..." ./cmd/demes
//
// A build with `go install ...@v1.2.3` needs neither: the toolchain records
// the module version.
var (
	Version string
	Commit  string
)

// Get returns the running build's Info.
func Get() Info {
	in := fromBuildInfo()
	if Version != "" {
		in.Version = Version
	}
	if Commit != "" {
		in.Commit = Commit
	}
	return in
}

// fromBuildInfo reads what the toolchain recorded.
func fromBuildInfo() Info {
	in := Info{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && in.Commit != "" {
		in.Commit += "+dirty"
	}
	return in
}

// String is the one-line form: "v1.2.3 (commit 0123abcd, go1.25.0)".
func (i Info) String() string {
	s := i.Version
	if i.Commit != "" {
		c, dirty := strings.CutSuffix(i.Commit, "+dirty")
		if len(c) > 12 {
			c = c[:12]
		}
		if dirty {
			c += "+dirty"
		}
		s += " (commit " + c + ", " + i.Go + ")"
	} else {
		s += " (" + i.Go + ")"
	}
	return s
}
