package web

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

// importRE finds the modules a UI script imports: import ... from './x.js'.
var importRE = regexp.MustCompile(`(?m)^import\s[^;]*?from\s+'(\./[a-z]+\.js)';`)

// TestUIModules: the UI is ES modules loaded from app.js. Every module that
// one imports is embedded and served as JavaScript (browsers refuse modules
// of another type), every embedded script is reachable from app.js (no
// forgotten file), and none is over the size the project allows.
func TestUIModules(t *testing.T) {
	_, _, u := friendsUI(t)
	seen := map[string]bool{}
	queue := []string{"app.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := fs.ReadFile(uiFiles, path.Join("ui", name))
		if err != nil {
			t.Errorf("%s is imported but not embedded: %v", name, err)
			continue
		}
		if lines := strings.Count(string(b), "\n"); lines > 600 {
			t.Errorf("%s has %d lines; split it (the limit is about 600)", name, lines)
		}
		rec := serve(u, newReq(u, "GET", "/"+name, ""))
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") {
			t.Errorf("GET /%s: %d %q, want 200 text/javascript", name, rec.Code, rec.Header().Get("Content-Type"))
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			queue = append(queue, strings.TrimPrefix(m[1], "./"))
		}
	}
	scripts, err := fs.Glob(uiFiles, "ui/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		if name := path.Base(s); !seen[name] {
			t.Errorf("%s is embedded but no module imports it", name)
		}
	}
	if len(seen) < 10 {
		t.Errorf("found only %d modules from app.js: %v; is the import pattern still right?", len(seen), seen)
	}
}
