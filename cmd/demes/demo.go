package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/demes/demes/identity"
)

// runDemo starts N nodes in this process with temporary homes, forms one
// group, and prints each node's UI address. Each UI can stop and restart its
// own node, to watch the group fail over and catch up.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("demo [--nodes N]", stdout)
	nodes := f.Int("nodes", 3, "how many nodes to run (1 to 9)")
	keep := f.Bool("keep", false, "keep the temporary homes when the demo ends (their path is printed)")
	tf := addTimingFlags(f)
	lf := addLogFlags(f)
	lf.level = "warn"
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.wantArgs(pos, 0, ""); err != nil {
		return err
	}
	if *nodes < 1 || *nodes > 9 {
		return f.usagef("--nodes %d: want 1 to 9", *nodes)
	}
	timing, err := tf.timing()
	if err != nil {
		return f.usageErr(err)
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return f.usageErr(err)
	}
	tuneGC(os.Getenv)
	root, err := os.MkdirTemp("", "demes-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stderr, "demes: demo homes in %s\n", root)
	} else {
		defer os.RemoveAll(root)
	}
	names := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"}
	var running []*runningNode
	defer func() {
		for _, r := range running {
			r.close()
		}
	}()
	for i := 0; i < *nodes; i++ {
		home := fmt.Sprintf("%s/%s", root, names[i])
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		id, err := identity.Generate()
		if err != nil {
			return err
		}
		r, err := startNode(ctx, nodeOptions{
			home: home, id: id, name: names[i], listen: "127.0.0.1:0", ui: "127.0.0.1:0",
			timing: timing, maxVoters: tf.maxVoters, logger: logger.With().Str("node", names[i]).Logger(), demo: true,
		})
		if err != nil {
			return err
		}
		running = append(running, r)
	}
	fmt.Fprintf(stderr, "demes: forming the group %q with %d members...\n", "demo", *nodes)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := formGroup(fctx, running); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(stdout, "Open each member's UI in a browser (each is a different person):")
	for i, r := range running {
		fmt.Fprintf(stdout, "  %-6s %s\n", names[i], r.uiURL())
	}
	fmt.Fprintln(stdout, "Stop a node from its UI (\"stop my node\") to watch another take over. Ctrl-C ends the demo.")
	<-ctx.Done()
	return nil
}

// formGroup creates the demo group on the first node and has the others join.
func formGroup(ctx context.Context, running []*runningNode) error {
	first := running[0].svc.Node()
	g, err := first.CreateGroup(ctx, "demo")
	if err != nil {
		return err
	}
	for _, r := range running[1:] {
		n := r.svc.Node()
		code, err := first.Invite(ctx, g.GroupID, n.Self().String())
		if err != nil {
			return err
		}
		if _, err := n.Join(ctx, code); err != nil {
			return err
		}
	}
	_, err = first.Send(ctx, g.GroupID, "Welcome to the DeMeS demo! Every message here is end-to-end encrypted to each member.", 10*time.Second)
	return err
}
