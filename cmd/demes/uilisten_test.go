package main

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestUIHoldsBothLoopbacks: a browser opening localhost:PORT tries
// [::1]:PORT first, where any user of the machine may listen while the
// node holds 127.0.0.1:PORT alone, and the page, with the token in its
// address, would be that user's. The UI listener holds both loopback
// addresses of its port; where the other one is taken, serve says so and
// does not start.
func TestUIHoldsBothLoopbacks(t *testing.T) {
	probe, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here (%v): nobody can listen on [::1] either", err)
	}
	probe.Close()

	ln, err := listenUI("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.LocalAddr().String()
			c.Close()
		}
	}()
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.Dial("tcp", net.JoinHostPort(host, port))
		if err != nil {
			t.Fatalf("the UI listener of 127.0.0.1:%s does not answer at %s: %v", port, host, err)
		}
		c.Close()
		if got := <-accepted; !strings.HasPrefix(got, strings.Trim(net.JoinHostPort(host, ""), ":")) {
			t.Errorf("a connection to %s was accepted at %s", host, got)
		}
	}
	if other, err := net.Listen("tcp", net.JoinHostPort("::1", port)); err == nil {
		other.Close()
		t.Fatalf("another program could listen on [::1]:%s beside the UI", port)
	}

	// Another program holds [::1]:PORT first: the UI does not start.
	squat, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	sport := strconv.Itoa(squat.Addr().(*net.TCPAddr).Port)
	ln2, err := listenUI(net.JoinHostPort("127.0.0.1", sport))
	if err == nil {
		ln2.Close()
		t.Fatalf("the UI started on 127.0.0.1:%s while another program holds [::1]:%s", sport, sport)
	}
	if want := "the UI listener cannot listen on [::1]:" + sport + " (a browser opening localhost:" + sport + " may reach it): the port is in use by another program"; err.Error() != want {
		t.Errorf("the error %q does not say that [::1] is taken and why it matters", err)
	}
	// And 127.0.0.1:PORT is free again.
	if again, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", sport)); err != nil {
		t.Errorf("the UI kept 127.0.0.1:%s after failing: %v", sport, err)
	} else {
		again.Close()
	}
}
