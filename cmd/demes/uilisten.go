package main

import (
	"net"
	"strconv"
	"sync"
	"syscall"
)

// listenUI listens for the browser UI on addr and, where addr is one
// loopback address of its port (or IPv4's any address), on the other
// loopback address of that port too. A browser opening localhost:PORT
// tries [::1]:PORT first, and any user of the machine may listen there
// while the node holds 127.0.0.1:PORT alone: the page, and the token in
// its address, would then be that user's (web.TestBrowserLocalhostReaches
// AnotherListener showed it). Where the machine has no such address (no
// IPv6), nobody can listen there either, and the one listener does.
//
// For a port the system chooses (PORT 0) whose other side another program
// holds, it asks for another port, a few times: that program did not mean
// the UI's port.
func listenUI(addr string) (net.Listener, error) {
	_, p, _ := net.SplitHostPort(addr)
	for try := 1; ; try++ {
		ln, other, err := listenBothLoopbacks(addr)
		switch {
		case err == nil:
			return ln, nil
		case other == "":
			return nil, listenFailed("the UI listener", addr, "--ui", err)
		case p != "0" || try == 5:
			// One address, said once: "cannot listen on [::1]:PORT (a
			// browser opening localhost:PORT may reach it)".
			_, op, _ := net.SplitHostPort(other)
			return nil, listenFailed("the UI listener", other+" (a browser opening localhost:"+op+" may reach it)", "--ui", err)
		}
	}
}

// listenBothLoopbacks is one try of listenUI: the listener, or the error
// and, when it is the other loopback address that is taken, that address.
func listenBothLoopbacks(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return ln, "", nil
	}
	var other string
	port := strconv.Itoa(tcp.Port)
	switch {
	case tcp.IP.To4() != nil && (tcp.IP.IsLoopback() || tcp.IP.IsUnspecified()):
		other = net.JoinHostPort("::1", port)
	case tcp.IP.Equal(net.IPv6loopback):
		other = net.JoinHostPort("127.0.0.1", port)
	default:
		return ln, "", nil // [::] holds both; another address is no loopback
	}
	ln2, err := net.Listen("tcp", other)
	if err != nil {
		if hasErrno(err, syscall.EADDRINUSE) {
			ln.Close()
			return nil, other, err
		}
		return ln, "", nil
	}
	return newBothListener(ln, ln2), "", nil
}

// bothListener accepts from two listeners; its address is the first's.
type bothListener struct {
	lns   [2]net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newBothListener(a, b net.Listener) *bothListener {
	l := &bothListener{lns: [2]net.Listener{a, b}, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, ln := range l.lns {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					// Closed (by Close), or a listener that fails for
					// good: the other goes on.
					return
				}
				select {
				case l.conns <- c:
				case <-l.done:
					c.Close()
					return
				}
			}
		}()
	}
	return l
}

// Accept returns the next connection to either address.
func (l *bothListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes both listeners.
func (l *bothListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		for _, ln := range l.lns {
			if e := ln.Close(); e != nil && err == nil {
				err = e
			}
		}
		l.wg.Wait()
	})
	return err
}

// Addr is the address the UI was asked for.
func (l *bothListener) Addr() net.Addr { return l.lns[0].Addr() }
