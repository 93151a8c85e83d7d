package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		pos   []string
		group string
		json  bool
	}{
		{[]string{"hello"}, []string{"hello"}, "", false},
		{[]string{"hello", "--group", "G"}, []string{"hello"}, "G", false},
		{[]string{"--group", "G", "hello"}, []string{"hello"}, "G", false},
		{[]string{"a", "--json", "b", "--group=G", "c"}, []string{"a", "b", "c"}, "G", true},
		{[]string{"--json", "--", "--group", "x"}, []string{"--group", "x"}, "", true},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, "", false},
		// "--" as a flag's value does not end the flags.
		{[]string{"--group", "--", "a", "--json"}, []string{"a"}, "--", true},
		{[]string{"--group", "--", "--", "--json"}, []string{"--json"}, "--", false},
		{[]string{"-"}, []string{"-"}, "", false},
		{nil, nil, "", false},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		group := fs.String("group", "", "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !slices.Equal(pos, tc.pos) || *group != tc.group || *asJSON != tc.json {
			t.Errorf("%q: pos %q group %q json %v; want %q %q %v", tc.args, pos, *group, *asJSON, tc.pos, tc.group, tc.json)
		}
	}
}

func TestParseInterspersedErrors(t *testing.T) {
	for _, args := range [][]string{{"a", "--nope"}, {"a", "--group"}, {"--json=x"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("group", "", "")
		fs.Bool("json", false, "")
		if _, err := parseInterspersed(fs, args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("  a\nb  c\n"); got != "a; b c" {
		t.Errorf("oneLine = %q", got)
	}
}
