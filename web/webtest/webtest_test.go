package webtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

func TestExecPathOverride(t *testing.T) {
	t.Setenv(EnvChrome, "/nonexistent/chromium")
	if p := ExecPath(); p != "" {
		t.Errorf("ExecPath() = %q with %s pointing nowhere, want \"\"", p, EnvChrome)
	}
}

func TestPage(t *testing.T) {
	b := NewBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><p id="greeting" hidden></p><input id="name">` +
			`<script>setTimeout(() => { const p = document.getElementById('greeting'); p.textContent = 'hello'; p.hidden = false; }, 50)</script>`))
	}))
	t.Cleanup(srv.Close)

	p := b.NewPage(t, time.Minute)
	p.Navigate(srv.URL)
	p.WaitVisible("#greeting")
	p.WaitText("#greeting", "hello")
	p.SendKeys("#name", "ada")
	if got := Eval[string](p, `document.getElementById('name').value`); got != "ada" {
		t.Errorf("typed %q", got)
	}
	if d := p.Dialogs(); len(d) != 0 {
		t.Errorf("dialogs: %v", d)
	}
}

// recordTB records what Require does with a test instead of doing it.
type recordTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordTB) Helper() {}

func (r *recordTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func require(t *testing.T) *recordTB {
	r := &recordTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(r)
	}()
	<-done
	return r
}

func TestRequireWithoutBrowser(t *testing.T) {
	t.Setenv(EnvChrome, "/nonexistent/chromium")

	t.Setenv(EnvCI, "")
	if r := require(t); r.skip == "" || r.fatal != "" {
		t.Errorf("without CI: skip %q, fatal %q; want a skip", r.skip, r.fatal)
	}
	t.Setenv(EnvCI, "true")
	if r := require(t); r.fatal == "" || r.skip != "" {
		t.Errorf("with CI: skip %q, fatal %q; want a failure", r.skip, r.fatal)
	}
}
