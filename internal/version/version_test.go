package version

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Go: "go1.25.0"}, "v1.2.3 (commit 0123456789ab, go1.25.0)"},
		{Info{Version: "(devel)", Commit: "0123456789abcdef0123456789abcdef01234567+dirty", Go: "go1.25.0"}, "(devel) (commit 0123456789ab+dirty, go1.25.0)"},
		{Info{Version: "(devel)", Commit: "abc", Go: "go1.25.0"}, "(devel) (commit abc, go1.25.0)"},
		{Info{Version: "(devel)", Go: "go1.25.0"}, "(devel) (go1.25.0)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Values stamped at link time win over the build info; unset, they leave
// it alone.
func TestStamped(t *testing.T) {
	defer func(v, c string) { Version, Commit = v, c }(Version, Commit)
	Version, Commit = "", ""
	plain := Get()
	Version, Commit = "v1.2.3", "0123abcd"
	got := Get()
	if got.Version != "v1.2.3" || got.Commit != "0123abcd" || got.Go != plain.Go {
		t.Errorf("stamped: %+v (unstamped: %+v)", got, plain)
	}
}
