package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestNetnsPortMapping is a member behind a home router that maps ports on
// request (miniupnpd, UPnP IGD and NAT-PMP, as many home routers do), on
// the simulated public internet of the hole punching tests, with a second
// member, pub, on that internet and no relay anywhere. The router
// masquerades and drops whatever comes in unasked, except what a port
// mapping forwards. ana's node asks the router for a mapping of its libp2p
// port (demes serve maps ports unless --port-map=false) and advertises the
// router's address with the mapped port; pub joins ana's group with ana's
// invite, which names only ana's addresses, so it can reach ana only
// through that mapping: the test asserts that it did (the router counted
// connections it forwarded because of a mapping), that the two chat both
// ways with one order and nothing lost, and that each sees the other
// direct.
//
// miniupnpd refuses to map when its WAN address is in a reserved range
// (192.0.0.0/24 is one) unless a STUN server tells it that this address is
// what the internet sees; the test runs a minimal one on pub
// (serveSTUN), inside its namespace, answering from where each request
// came.
func TestNetnsPortMapping(t *testing.T) {
	requireNetns(t)
	requireNft(t)
	requireP2P(t)
	mini := lookTool("miniupnpd")
	if mini == "" {
		t.Skip("miniupnpd is not installed (apt-get install -y miniupnpd-nftables): the home router maps ports with it")
	}
	t.Parallel()

	const (
		pubIP = "192.0.0.66"
		wanIP = "192.0.0.75"
	)
	tp := newTopo(t)
	tp.hostHasNone(publicNet.keep)
	tp.bridge("inet")
	tp.bridge("lan1")
	pubNS := tp.netns("pub")
	tp.attach(pubNS, "eth0", "inet", "p-pub", pubIP+publicNet.mask)
	tp.forwarding(pubNS, false)
	rt := tp.netns("rt-ana")
	tp.attach(rt, "wan0", "inet", "p-wan-ana", wanIP+publicNet.mask)
	tp.attach(rt, "lan0", "lan1", "p-gw-ana", "192.168.1.1/24")
	tp.forwarding(rt, true)
	tp.masquerade(rt, "wan0")
	tp.upnpFirewall(rt, "wan0")
	anaNS := tp.netns("ana")
	tp.attach(anaNS, "eth0", "lan1", "p-ana", "192.168.1.10/24")
	tp.defaultRoute(anaNS, "192.168.1.1")
	tp.unreachable(pubNS, "192.168.1.10")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	startDaemon(t, pubNS, "stun", self)
	startMiniupnpd(t, rt, mini, pubIP)

	ana, pub := newNode(t, "ana", anaNS), newNode(t, "pub", pubNS)
	serve := []string{"--p2p", "0.0.0.0:7948", "--listen", "0.0.0.0:7946", "--ui", "127.0.0.1:7947"}
	ana.start(serve...)
	pub.start(append(serve, "--port-map=false")...)

	// ana's node learns the mapping and lists the router's address among
	// its own (AutoNAT has yet to confirm it: it needs peers).
	mapped := regexp.MustCompile(`^/ip4/` + regexp.QuoteMeta(wanIP) + `/(tcp|udp)/[0-9]+`)
	waitFor(t, waitLong, "ana's node to list the router's mapped address", func() bool {
		r := ana.reachability()
		for _, a := range append(append(r.Reachable, r.Unknown...), r.Unreachable...) {
			if mapped.MatchString(a) {
				t.Logf("ana's mapped address: %s", a)
				return true
			}
		}
		return false
	})

	formGroup(t, ana, pub)
	texts := chatBothWays(t, "mapped", ana, pub, 3)
	waitSameHistory(t, []*node{ana, pub}, texts)
	if n := tp.forwardedByMapping(rt); n == 0 {
		t.Fatalf("the router forwarded no connection through a port mapping: pub did not reach ana the way the test is about")
	} else {
		t.Logf("connections the router forwarded through a port mapping: %d", n)
	}
	for _, pair := range [][2]*node{{ana, pub}, {pub, ana}} {
		waitPath(t, pair[0], pair[1], "direct")
	}
	for _, l := range ana.logLines("AutoNAT:") {
		t.Logf("ana: %s", l)
	}
}

// upnpFirewall gives router ns a home router's stateful firewall that lets
// in what its port mappings forward: what comes in through wan is dropped
// unless it belongs to a connection opened from inside or was translated
// by a mapping (ct status dnat, counted), as OpenWrt's firewall does. It
// also makes the chains miniupnpd fills (its nftables backend's defaults,
// in table inet filter; the package's own nft_init.sh needs a file Debian
// does not ship).
func (tp *topo) upnpFirewall(ns, wan string) {
	tp.t.Helper()
	rules := fmt.Sprintf(`table inet filter {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname %[1]q ct state established,related accept
		iifname %[1]q ct status dnat counter accept
		jump miniupnpd
		iifname %[1]q drop
	}
	chain input {
		type filter hook input priority 0; policy accept;
		iifname %[1]q ct state established,related accept
		iifname %[1]q drop
	}
	chain miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
}
`, wan)
	tp.exec(ns, rules, nftBin, "-f", "-")
}

// forwardedByMapping is how many connections router ns let in because a
// port mapping translated them: the first packet of each is new, the rest
// established, so the dnat rule's counter counts connections.
func (tp *topo) forwardedByMapping(ns string) int {
	tp.t.Helper()
	out, err := exec.Command(ipBin, "netns", "exec", ns, nftBin, "list", "chain", "inet", "filter", "forward").CombinedOutput()
	if err != nil {
		tp.t.Fatalf("in %s: nft list chain inet filter forward: %v\n%s", ns, err, out)
	}
	m := regexp.MustCompile(`ct status dnat counter packets ([0-9]+)`).FindSubmatch(out)
	if m == nil {
		tp.t.Fatalf("in %s: no dnat counter in the forward chain:\n%s", ns, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// startMiniupnpd runs miniupnpd in router ns, mapping ports on wan0 for
// the home network on lan0 (only to ports 1024 and up of its own
// addresses, as its example configuration allows), and waits until it
// says port forwarding is enabled, which needs the STUN server at stunIP.
func startMiniupnpd(t *testing.T, ns, bin, stunIP string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "miniupnpd.conf")
	lines := []string{
		"ext_ifname=wan0",
		"listening_ip=lan0",
		"http_port=0",
		"enable_natpmp=yes",
		"enable_upnp=yes",
		"secure_mode=yes",
		"system_uptime=yes",
		"uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
		"lease_file=" + filepath.Join(dir, "leases"),
		"upnp_table_name=filter",
		"upnp_nat_table_name=filter",
		"upnp_forward_chain=miniupnpd",
		"upnp_nat_chain=prerouting_miniupnpd",
		"upnp_nat_postrouting_chain=postrouting_miniupnpd",
		"ext_perform_stun=yes",
		"ext_stun_host=" + stunIP,
		"ext_stun_port=3478",
		"allow 1024-65535 192.168.1.0/24 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := startDaemon(t, ns, "miniupnpd", bin, "-d", "-f", conf, "-P", filepath.Join(dir, "pid"))
	waitFor(t, waitLong, "miniupnpd to enable port forwarding", func() bool {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "Port forwarding is impossible") && !strings.Contains(string(b), "STUN") {
			t.Fatalf("miniupnpd will not map ports:\n%s", b)
		}
		return strings.Contains(string(b), "Port forwarding is now enabled")
	})
}

// startDaemon runs argv in namespace ns until the test ends, its output in
// a log that is shown if the test fails, and returns the log's path. A
// daemon dies with the test binary (Pdeathsig), as the nodes do.
func startDaemon(t *testing.T, ns, name string, argv ...string) string {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(ipBin, append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if name == "stun" {
		cmd.Env = append(os.Environ(), stunEnv+"=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s's log (in %s):\n%s", name, ns, b)
		}
	})
	return logPath
}

// stunEnv, set in the environment of the test binary, makes it a STUN
// server (serveSTUN) instead of running tests: the test starts it that way
// inside a namespace.
const stunEnv = "DEMES_NETNS_STUN"

// serveSTUN answers STUN binding requests (RFC 5389) on UDP port 3478 with
// the address and port each came from, as MAPPED-ADDRESS and
// XOR-MAPPED-ADDRESS, from the port it listens on whatever the request
// asks (a CHANGE-REQUEST is not honoured: miniupnpd only needs to learn
// its public address). It serves until it is killed.
func serveSTUN() error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 3478})
	if err != nil {
		return err
	}
	const cookie = 0x2112A442
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return err
		}
		ip := from.IP.To4()
		if n < 20 || binary.BigEndian.Uint16(buf[0:2]) != 0x0001 || binary.BigEndian.Uint32(buf[4:8]) != cookie || ip == nil {
			continue
		}
		resp := make([]byte, 20, 44)
		binary.BigEndian.PutUint16(resp[0:2], 0x0101) // binding success
		copy(resp[4:20], buf[4:20])                   // cookie, transaction id
		port := uint16(from.Port)
		resp = binary.BigEndian.AppendUint16(resp, 0x0001) // MAPPED-ADDRESS
		resp = binary.BigEndian.AppendUint16(resp, 8)
		resp = append(resp, 0, 1)
		resp = binary.BigEndian.AppendUint16(resp, port)
		resp = append(resp, ip...)
		resp = binary.BigEndian.AppendUint16(resp, 0x0020) // XOR-MAPPED-ADDRESS
		resp = binary.BigEndian.AppendUint16(resp, 8)
		resp = append(resp, 0, 1)
		resp = binary.BigEndian.AppendUint16(resp, port^uint16(cookie>>16))
		resp = binary.BigEndian.AppendUint32(resp, binary.BigEndian.Uint32(ip)^cookie)
		binary.BigEndian.PutUint16(resp[2:4], uint16(len(resp)-20))
		if _, err := c.WriteToUDP(resp, from); err != nil {
			return err
		}
	}
}
