// Package webtest drives the DeMeS browser UI in a real headless Chromium,
// for tests. It is a test helper: only _test.go files should import it.
//
// One [Browser] per test binary keeps the tests fast; start it lazily in
// TestMain and give each test its own [Page] (a tab with its own deadline):
//
//	var browser *webtest.Browser
//
//	func TestMain(m *testing.M) {
//		browser = webtest.New()
//		code := m.Run()
//		browser.Close()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		p := browser.NewPage(t, time.Minute) // skips without a browser, unless $CI is set
//		p.Navigate(uiURL)
//		p.WaitText("#chat-title", "friends")
//	}
//
// A single test can use [NewBrowser] instead. Every wait polls a condition
// in the page with a generous deadline ([Page.Step]); nothing sleeps. A
// failed wait ends the test with the page's visible text, so the log shows
// what the page showed instead.
//
// A Page fails its test when the page opens a JavaScript dialog (alert,
// confirm, prompt), throws an uncaught exception, or violates its
// Content-Security-Policy: the DeMeS UI does none of these, so each one is
// a bug or an injection.
//
// # Browsers
//
// [ExecPath] finds Chromium or Chrome on PATH (or $DEMES_CHROME). Without
// one, tests skip, unless the CI environment variable is set: then they
// fail, so a CI without a browser cannot pass silently.
//
// # Screenshots
//
// [Page.Screenshot] writes PNGs into testdata/screenshots of the package
// under test when DEMES_SCREENSHOTS=1, and into the test's temporary
// directory otherwise, so ordinary runs leave the tree clean.
package webtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Environment variables this package reads.
const (
	EnvCI          = "CI"                // set (non-empty): a missing browser fails tests instead of skipping them
	EnvChrome      = "DEMES_CHROME"      // path of the browser to use
	EnvScreenshots = "DEMES_SCREENSHOTS" // "1": keep screenshots in testdata/screenshots
)

// browserNames are tried on PATH in order; the same list chromedp uses on
// Unix, so what we find is what it would run.
var browserNames = []string{
	"headless_shell", "headless-shell", "chromium", "chromium-browser",
	"google-chrome", "google-chrome-stable", "google-chrome-beta", "google-chrome-unstable",
	"/usr/bin/google-chrome", "/usr/local/bin/chrome", "/snap/bin/chromium", "chrome",
}

// ExecPath returns the browser binary the tests run: $DEMES_CHROME, or the
// first Chromium or Chrome found on PATH. It returns "" if there is none.
func ExecPath() string {
	if p := os.Getenv(EnvChrome); p != "" {
		if full, err := exec.LookPath(p); err == nil {
			return full
		}
		return ""
	}
	for _, name := range browserNames {
		if full, err := exec.LookPath(name); err == nil {
			return full
		}
	}
	return ""
}

// Require returns the browser's path. Without a browser it skips t, or
// fails it when the CI environment variable is set.
func Require(t testing.TB) string {
	t.Helper()
	p := ExecPath()
	if p != "" {
		return p
	}
	msg := "no Chromium or Chrome found on PATH (install chromium, or set " + EnvChrome + ")"
	if os.Getenv(EnvCI) != "" {
		t.Fatalf("%s; browser tests must run when %s is set", msg, EnvCI)
	}
	t.Skipf("skipping browser test: %s; set %s=1 to make this a failure", msg, EnvCI)
	return ""
}

// Browser is a headless Chromium that starts on first use and is shared by
// the pages of a test binary. It is safe for concurrent use.
type Browser struct {
	mu      sync.Mutex
	started bool
	ctx     context.Context // the browser's first tab; pages are new tabs under it
	stop    []context.CancelFunc
	err     error
}

// New returns a Browser that starts Chromium when the first page opens. Call
// Close when done (in TestMain, after m.Run).
func New() *Browser {
	return &Browser{}
}

// NewBrowser returns a Browser for one test, closed when the test ends. It
// skips or fails t as [Require] does.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	Require(t)
	b := New()
	t.Cleanup(b.Close)
	return b
}

// start launches Chromium once; later calls return the first result.
func (b *Browser) start(execPath string) (context.Context, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return b.ctx, b.err
	}
	b.started = true
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.WindowSize(1280, 860),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b.stop = []context.CancelFunc{cancelCtx, cancelAlloc}
	// The first run starts the browser and ties its life to ctx, which
	// has no deadline: each page sets its own.
	if err := chromedp.Do(ctx); err != nil {
		b.err = fmt.Errorf("failed to start %s: %w", execPath, err)
		return nil, b.err
	}
	b.ctx = ctx
	return ctx, nil
}

// Close stops the browser, if it started, and waits for it to exit.
func (b *Browser) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cancel := range b.stop {
		cancel()
	}
	b.stop = nil
}

// Page is one browser tab bound to a test. Its methods fail the test
// (t.Fatal) when an action or a wait fails, so call them from the test's
// goroutine.
type Page struct {
	T testing.TB
	// Ctx is the tab's context: chromedp actions run on it (or on contexts
	// derived from it). It ends at the page's deadline or when the test ends.
	Ctx context.Context
	// Step bounds each wait and action; a failure then still leaves time to
	// report what the page showed.
	Step time.Duration

	mu       sync.Mutex
	dialogs  []string
	problems []string
	console  []string
}

// NewPage opens a tab that lives at most timeout and closes when t ends. It
// skips or fails t as [Require] does.
func (b *Browser) NewPage(t testing.TB, timeout time.Duration) *Page {
	t.Helper()
	execPath := Require(t)
	parent, err := b.start(execPath)
	if err != nil {
		t.Fatal(err)
	}
	deadlineCtx, cancelDeadline := context.WithTimeout(parent, timeout)
	ctx, cancelTab := chromedp.NewContext(deadlineCtx)
	p := &Page{T: t, Ctx: ctx, Step: min(30*time.Second, timeout)}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		cancelTab()
		cancelDeadline()
		t.Fatalf("failed to open a browser tab: %v", err)
	}

	var wg sync.WaitGroup
	// Subscribe before anything loads, so nothing is missed.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	console := chromedp.Console(ctx)
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			p.record(&p.dialogs, fmt.Sprintf("%s dialog: %q", ev.Type, ev.Message))
			// Dismiss it, or the page would hang until the deadline.
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	})
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			line := fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1)
			p.record(&p.console, line)
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				p.record(&p.problems, line)
			}
		}
	})
	t.Cleanup(func() {
		cancelTab()
		cancelDeadline()
		wg.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, d := range p.dialogs {
			t.Errorf("the page opened a JavaScript dialog: %s", d)
		}
		for _, pr := range p.problems {
			t.Errorf("the page reported: %s", pr)
		}
		if t.Failed() && len(p.console) > 0 {
			t.Logf("browser console:\n  %s", strings.Join(p.console, "\n  "))
		}
	})
	return p
}

func (p *Page) record(list *[]string, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*list = append(*list, s)
}

// Dialogs returns the JavaScript dialogs the page opened so far.
func (p *Page) Dialogs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.dialogs...)
}

// Do runs chromedp actions, each step bounded by Step.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// Navigate loads url and waits for the document to load.
func (p *Page) Navigate(url string) {
	p.T.Helper()
	p.Do("navigate", chromedp.Navigate(url))
}

// Click clicks the first element that matches the CSS selector, once it is
// visible, with the mouse at the element's centre, as a person does.
//
// A person aims at a button that stands still; a page whose status refresh
// re-renders a list above it moves it, and a click aimed a moment earlier
// lands beside it (the mouse event goes to whatever is at that point now).
// So Click waits until the element keeps its place for a few frames, checks
// that nothing covers its centre, clicks there, and then checks that the
// click reached the element; when it did not (the page moved it or replaced
// it meanwhile), Click aims again, as a person's second try would.
func (p *Page) Click(sel string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	last := "it never appeared"
	for attempt := 1; ; attempt++ {
		token := fmt.Sprintf("demes-click-%d", attempt)
		aim, err := chromedp.Run(ctx, chromedp.Evaluate[clickAim](fmt.Sprintf(aimJS, sel, token), chromedp.EvalAwaitPromise))
		if err == nil && aim.OK {
			_, err = chromedp.Run(ctx, chromedp.MouseClickXY(aim.X, aim.Y))
			if err == nil {
				hit, herr := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`window[%q] === true`, token)))
				if herr == nil && hit {
					return
				}
				last = "the click landed beside it (the page moved it)"
			}
		} else if err == nil {
			last = aim.Why
		}
		if err != nil {
			last = err.Error()
		}
		if ctx.Err() != nil {
			p.fail("click %s: %s", sel, last)
			return
		}
		if pause(ctx, 50*time.Millisecond) != nil {
			p.fail("click %s: %s", sel, last)
			return
		}
	}
}

// clickAim is where Click aims, or why it cannot yet.
type clickAim struct {
	OK  bool    `json:"ok"`
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
	Why string  `json:"why"`
}

// aimJS finds the element (%[1]q), scrolls it into view, waits until its box
// is the same in three animation frames in a row, checks that its centre is
// not covered, and arms a one-time listener that records in window[%[2]q]
// that a click reached it.
const aimJS = `(async (sel, token) => {
  const el = document.querySelector(sel);
  if (!el) return {ok: false, why: 'no element matches it'};
  if (el.disabled) return {ok: false, why: 'it is disabled'};
  el.scrollIntoView({block: 'center', inline: 'center'});
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const same = (a, b) => a.x === b.x && a.y === b.y && a.width === b.width && a.height === b.height;
  let box = el.getBoundingClientRect(), still = 0;
  for (let i = 0; i < 60 && still < 3; i++) {
    await frame();
    const now = el.getBoundingClientRect();
    still = same(box, now) ? still + 1 : 0;
    box = now;
  }
  if (still < 3) return {ok: false, why: 'it keeps moving'};
  if (box.width === 0 || box.height === 0) return {ok: false, why: 'it is not visible'};
  const x = box.x + box.width / 2, y = box.y + box.height / 2;
  const top = document.elementFromPoint(x, y);
  if (!top || !(top === el || el.contains(top))) return {ok: false, why: 'something covers it'};
  window[token] = false;
  el.addEventListener('click', () => { window[token] = true; }, {once: true, capture: true});
  return {ok: true, x, y};
})(%[1]q, %[2]q)`

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendKeys focuses the first element that matches the CSS selector and
// types text. "\n" types Enter as a key down, a character and a key up; a
// page that handles Enter on keydown (a chat's send) then still gets the
// character, unlike with a real keyboard, so use [Page.PressEnter] there.
func (p *Page) SendKeys(sel, text string) {
	p.T.Helper()
	p.Do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// SetValue sets the value of a form field without typing, for long input
// such as ids and codes.
func (p *Page) SetValue(sel, value string) {
	p.T.Helper()
	p.Do("set value of "+sel, chromedp.SetValue(chromedp.CSS(sel), value, chromedp.NodeVisible))
}

// PressEnter presses Enter in the focused element as a keyboard does: a key
// down and a key up, with no separate character event, so that a page that
// cancels the keydown sees no newline.
func (p *Page) PressEnter() {
	p.T.Helper()
	p.Do("press Enter", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// KeyEvent sends keys to the focused element with modifiers, such as
// Shift+Enter: p.KeyEvent("\r", chromedp.ModifierShift).
func (p *Page) KeyEvent(keys string, mods ...chromedp.Modifier) {
	p.T.Helper()
	p.Do("press keys", chromedp.KeyEvent(keys, chromedp.KeyModifiers(mods...)))
}

// WaitFor polls the JavaScript function fn, called with args, until it
// returns a truthy value. what names the condition in the failure message.
func (p *Page) WaitFor(what, fn string, args ...any) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step+5*time.Second)
	defer cancel()
	opts := []chromedp.PollOption{
		chromedp.WithPollingInterval(25 * time.Millisecond),
		chromedp.WithPollingTimeout(p.Step),
	}
	if len(args) > 0 {
		opts = append(opts, chromedp.WithPollingArgs(args...))
	}
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[chromedp.Void](fn, opts...)); err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			err = fmt.Errorf("not true after %v", p.Step)
		}
		p.fail("waiting for %s: %v", what, err)
	}
}

// WaitText waits until the text of the first element matching the CSS
// selector contains want.
func (p *Page) WaitText(sel, want string) {
	p.T.Helper()
	p.WaitFor(fmt.Sprintf("%s to contain %q", sel, want),
		`(sel, want) => { const e = document.querySelector(sel); return !!e && e.textContent.includes(want); }`,
		sel, want)
}

// WaitVisible waits until the first element matching the CSS selector is
// rendered (not hidden, with a size).
func (p *Page) WaitVisible(sel string) {
	p.T.Helper()
	p.WaitFor(sel+" to be visible",
		`(sel) => { const e = document.querySelector(sel); return !!e && e.getClientRects().length > 0; }`, sel)
}

// WaitHidden waits until no element matching the CSS selector is rendered.
func (p *Page) WaitHidden(sel string) {
	p.T.Helper()
	p.WaitFor(sel+" to be hidden",
		`(sel) => { const e = document.querySelector(sel); return !e || e.getClientRects().length === 0; }`, sel)
}

// Eval evaluates a JavaScript expression in p and decodes its value as T.
func Eval[T any](p *Page, expr string) T {
	p.T.Helper()
	return run(p, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// run runs action in p within a step's time and returns its value; it fails
// the test, saying what was being done, if it cannot.
func run[T any](p *Page, what string, action chromedp.Action[T]) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		p.fail("%s: %v", what, err)
	}
	return v
}

// Screenshot saves a PNG of the viewport under name (".png" added) and
// returns its path; see the package documentation for where.
func (p *Page) Screenshot(name string) string {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fail("screenshot: %v", err)
	}
	return p.save(name, png)
}

// ScreenshotElement saves a PNG of the first element matching the CSS
// selector and returns its path.
func (p *Page) ScreenshotElement(sel, name string) string {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		p.fail("screenshot of %s: %v", sel, err)
	}
	return p.save(name, png)
}

func (p *Page) save(name string, png []byte) string {
	p.T.Helper()
	dir := ScreenshotDir(p.T)
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.T.Fatalf("failed to save screenshot: %v", err)
	}
	p.T.Logf("screenshot: %s", path)
	return path
}

// ScreenshotDir returns where screenshots go: testdata/screenshots of the
// package under test (created if needed) when DEMES_SCREENSHOTS=1, else a
// temporary directory of t.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	if os.Getenv(EnvScreenshots) != "1" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "screenshots"))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("failed to make the screenshot directory: %v", err)
	}
	return dir
}

// fail ends the test with the page's visible text, which usually says why
// a wait failed.
func (p *Page) fail(format string, args ...any) {
	p.T.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(p.Ctx, 5*time.Second)
	defer cancel()
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err == nil {
		if len(text) > 4000 {
			text = text[:4000] + "\n[...]"
		}
		msg += "\n--- the page showed ---\n" + text + "\n---"
	}
	p.T.Fatal(msg)
}
