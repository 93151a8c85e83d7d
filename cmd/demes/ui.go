package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"

	"github.com/demes/demes/api"
)

// runUI prints the address of the running serve's browser UI with its token,
// as serve printed it at start, for a new tab or a browser restarted since
// (the tab keeps the token only for its session). With --open it also asks
// the desktop to open it.
func runUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newNodeFlags("ui [--open] [--json]", stdout, "print url as JSON", false)
	open := f.Bool("open", false, "also open the address in the desktop's browser")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	c, _, err := f.connect(ctx)
	if err != nil {
		return err
	}
	// serve.json may have outlived its serve: only a serve that answers
	// with this token has this address.
	if _, err := c.call(ctx, http.MethodGet, api.RouteStatus, nil, nil, apiTimeout); err != nil {
		return err
	}
	addr := c.base.JoinPath("/").String() + "#token=" + c.token
	if *f.json {
		if err := writeJSON(stdout, struct {
			URL string `json:"url"`
		}{addr}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, addr)
	}
	if *open {
		return openBrowser(addr)
	}
	return nil
}

// openBrowser hands url to the desktop's opener.
func openBrowser(url string) error {
	opener := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		opener = "open"
	case "windows":
		opener = "explorer"
	}
	path, err := exec.LookPath(opener)
	if err != nil {
		return withHint(fmt.Errorf("cannot open a browser here: no %s", opener), "open the address above in a browser yourself")
	}
	if err := exec.Command(path, url).Start(); err != nil {
		return withHint(fmt.Errorf("cannot open a browser: %v", err), "open the address above in a browser yourself")
	}
	return nil
}
