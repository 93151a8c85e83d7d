package web

import (
	"bytes"
	"io/fs"
	"net/http"
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

func TestStaticUI(t *testing.T) {
	_, _, u := friendsUI(t)
	r := newReq(u, "GET", "/", "")
	r.Header.Del("Authorization") // the UI needs no token
	rec := serve(u, r)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `<script type="module" src="app.js"></script>`) {
		t.Fatalf("GET /: %d %.200s", rec.Code, rec.Body.String())
	}
	for path, ctype := range map[string]string{"/app.js": "text/javascript", "/style.css": "text/css", "/favicon.svg": "image/svg+xml"} {
		rec := serve(u, newReq(u, "GET", path, ""))
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	if rec := serve(u, newReq(u, "POST", "/", `{}`)); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", rec.Code)
	}
}

// TestUIHasNoInlineCode checks the embedded files for what the CSP would
// block (so the page would break) and for HTML sinks that must never see
// message text. The browser tests check the behaviour; this names the line.
func TestUIHasNoInlineCode(t *testing.T) {
	forbidden := map[string]*regexp.Regexp{
		"inline script":       regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`),
		"script without src":  regexp.MustCompile(`<script(?:\s+(?:defer|type="[^"]*"))*\s*>`),
		"style element":       regexp.MustCompile(`<style`),
		"style attribute":     regexp.MustCompile(`\sstyle=`),
		"event attribute":     regexp.MustCompile(`\son[a-z]+=`),
		"javascript: URL":     regexp.MustCompile(`javascript:`),
		"outside resource":    regexp.MustCompile(`(src|href)="(https?:)?//`),
		"innerHTML":           regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write`),
		"eval":                regexp.MustCompile(`\beval\(|new Function`),
		"setAttribute style":  regexp.MustCompile(`setAttribute\(\s*['"]style`),
		"string setTimeout":   regexp.MustCompile(`setTimeout\(\s*['"]`),
		"on* attribute in JS": regexp.MustCompile(`setAttribute\(\s*['"]on`),
		"outside import":      regexp.MustCompile(`(import|from)\s*\(?\s*['"](https?:)?//`),
	}
	err := fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			if strings.HasPrefix(strings.TrimSpace(string(line)), "//") {
				continue // comments may name what they avoid
			}
			for what, re := range forbidden {
				if re.Match(line) {
					t.Errorf("%s:%d: %s: %s", path, i+1, what, bytes.TrimSpace(line))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
