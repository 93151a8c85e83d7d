package webtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Viewport sets the size of the page's viewport in CSS pixels, as a window
// of that size would have: 390x844 is a phone held upright.
func (p *Page) Viewport(width, height int64) {
	p.T.Helper()
	p.Do(fmt.Sprintf("viewport %dx%d", width, height), chromedp.EmulateViewport(width, height))
}

// Touch makes the page's main pointer a finger: CSS (pointer: coarse) and
// (hover: none) match, and the page sees touch points. Mouse clicks of the
// test still work.
func (p *Page) Touch() {
	p.T.Helper()
	p.call("emulate touch", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5})
		return err
	})
}

// ColorScheme makes CSS (prefers-color-scheme: scheme) match: "light" or
// "dark"; "" goes back to the browser's own.
func (p *Page) ColorScheme(scheme string) {
	p.T.Helper()
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	p.call("emulate color scheme "+scheme, func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, params)
		return err
	})
}

// Grant sets a permission (such as "notifications") for origin, as if the
// person had allowed it in the browser's prompt; setting is "granted",
// "denied" or "prompt" (ask). It applies to the whole browser, so give each
// test its own origin (its own server).
func (p *Page) Grant(origin, permission, setting string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: permission},
		Setting:    browser.PermissionSetting(setting),
		Origin:     origin,
	}); err != nil {
		p.fail("set permission %s to %s: %v", permission, setting, err)
	}
}

// BeforeLoad runs the JavaScript source in every document the page loads
// from now on, before the document's own scripts: for stand-ins of browser
// APIs that a test observes. The page's Content-Security-Policy does not
// apply to it.
func (p *Page) BeforeLoad(source string) {
	p.T.Helper()
	p.call("add a script before load", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: source})
		return err
	})
}

// Reload reloads the page and waits for it to load.
func (p *Page) Reload() {
	p.T.Helper()
	p.Do("reload", chromedp.Reload())
}

func (p *Page) call(what string, fn func(context.Context, *chromedp.Target) error) {
	p.T.Helper()
	p.Do(what, chromedp.Func(fn))
}

// ScreenshotDocs saves a PNG of the viewport for the documentation: into
// docs/img of the module (found from the working directory upwards by its
// go.mod) when DEMES_SCREENSHOTS=1, else, like [Page.Screenshot], into a
// temporary directory.
func (p *Page) ScreenshotDocs(name string) string {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.fail("screenshot: %v", err)
	}
	dir := p.T.TempDir()
	if os.Getenv(EnvScreenshots) == "1" {
		root, err := moduleRoot()
		if err != nil {
			p.T.Fatal(err)
		}
		dir = filepath.Join(root, "docs", "img")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			p.T.Fatal(err)
		}
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.T.Fatalf("failed to save screenshot: %v", err)
	}
	p.T.Logf("screenshot: %s", path)
	return path
}

// moduleRoot is the nearest directory upwards with a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Await evaluates a JavaScript expression whose value is a promise, waits
// for the promise and decodes its value as T.
func Await[T any](p *Page, expr string) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(e *runtime.EvaluateParams) { yes := true; e.AwaitPromise = &yes }))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// EvalDevTools evaluates a JavaScript expression as the DevTools console
// does, with its command line API (getEventListeners, for one), and decodes
// its value as T.
func EvalDevTools[T any](p *Page, expr string) T {
	p.T.Helper()
	return run(p, "evaluate "+expr, chromedp.EvaluateAsDevTools[T](expr))
}
