package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// topo is one test's network: the namespaces it made, each a machine, and
// a "switch" namespace that holds every bridge and the bridge-side ends of
// the veth pairs. Nothing lands in the host's own namespace, so deleting
// the namespaces deletes the bridges and veths with them.
type topo struct {
	t *testing.T
	// prefix starts every namespace's name: "dm", the test binary's pid
	// and random hex, so that parallel runs, and namespaces a killed run
	// left behind, do not collide, and sweepStale can tell which are left.
	prefix string
	sw     string   // the switch namespace
	nss    []string // every namespace made, the switch first
}

// newTopo makes the switch namespace of a new network and deletes the
// whole network when t ends, also when it fails.
func newTopo(t *testing.T) *topo {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	tp := &topo{t: t, prefix: fmt.Sprintf("dm%d-%s", os.Getpid(), hex.EncodeToString(b[:]))}
	t.Cleanup(tp.destroy)
	tp.sw = tp.netns("sw")
	return tp
}

// ip runs iproute2's ip with args and fails the test if it fails.
func (tp *topo) ip(args ...string) {
	tp.t.Helper()
	if out, err := exec.Command(ipBin, args...).CombinedOutput(); err != nil {
		tp.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// exec runs a command inside namespace ns and fails the test if it fails.
func (tp *topo) exec(ns string, stdin string, args ...string) {
	tp.t.Helper()
	cmd := exec.Command(ipBin, append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		tp.t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
}

// netns makes a namespace for one machine, role naming it, with its
// loopback up: a new namespace's lo is down, and the node's UI and API
// listen on 127.0.0.1 inside it.
func (tp *topo) netns(role string) string {
	tp.t.Helper()
	name := tp.prefix + "-" + role
	tp.ip("netns", "add", name)
	tp.nss = append(tp.nss, name)
	tp.ip("-n", name, "link", "set", "lo", "up")
	return name
}

// bridge makes a bridge, one network segment, in the switch namespace.
func (tp *topo) bridge(name string) {
	tp.t.Helper()
	tp.ip("-n", tp.sw, "link", "add", name, "type", "bridge")
	tp.ip("-n", tp.sw, "link", "set", name, "up")
}

// attach plugs namespace ns into bridge br through a veth pair: ifname
// inside ns, with address cidr, and port on the bridge's side (in the
// switch namespace), which setPort takes down to cut the machine off.
// Names are per namespace, so short fixed ones do not collide with the
// host's; they must stay within 15 characters.
func (tp *topo) attach(ns, ifname, br, port, cidr string) {
	tp.t.Helper()
	tp.ip("link", "add", "name", ifname, "netns", ns, "type", "veth", "peer", "name", port, "netns", tp.sw)
	tp.ip("-n", tp.sw, "link", "set", port, "master", br)
	tp.ip("-n", tp.sw, "link", "set", port, "up")
	tp.ip("-n", ns, "addr", "add", cidr, "dev", ifname)
	tp.ip("-n", ns, "link", "set", ifname, "up")
}

// setPort brings a bridge-side port down or up: down is a pulled cable
// (the machine's own end stays up, its packets go nowhere).
func (tp *topo) setPort(port string, up bool) {
	tp.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	tp.ip("-n", tp.sw, "link", "set", port, state)
}

// defaultRoute sends ns's traffic for other networks to gateway gw.
func (tp *topo) defaultRoute(ns, gw string) {
	tp.t.Helper()
	tp.ip("-n", ns, "route", "add", "default", "via", gw)
}

// forwarding turns IPv4 forwarding on or off in ns. A new namespace starts
// with it off; the tests set it either way so that what a machine does is
// written in the test.
func (tp *topo) forwarding(ns string, on bool) {
	tp.t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	tp.exec(ns, "", "sysctl", "-q", "-w", "net.ipv4.ip_forward="+v)
}

// masquerade makes ns a home router: what it forwards out of wan leaves
// with wan's address (source NAT with connection tracking, as a home
// router's masquerade does).
func (tp *topo) masquerade(ns, wan string) {
	tp.t.Helper()
	rules := "table ip nat {\n\tchain post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n" +
		"\t\toifname \"" + wan + "\" counter masquerade\n\t}\n}\n"
	tp.exec(ns, rules, nftBin, "-f", "-")
}

// firewall gives router ns a home router's stateful firewall: what comes
// in through wan is dropped, whether for the router or to be forwarded,
// unless it belongs to a connection opened from inside (or is related to
// one, as an ICMP error is).
func (tp *topo) firewall(ns, wan string) {
	tp.t.Helper()
	var rules strings.Builder
	rules.WriteString("table ip filter {\n")
	for _, hook := range []string{"input", "forward"} {
		fmt.Fprintf(&rules, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n", hook, hook)
		fmt.Fprintf(&rules, "\t\tiifname %q ct state established,related accept\n\t\tiifname %q drop\n\t}\n", wan, wan)
	}
	rules.WriteString("}\n")
	tp.exec(ns, rules.String(), nftBin, "-f", "-")
}

// cut makes router ns drop what it would forward to or from addr, until
// heal: the path between its network and that address is broken while
// everything else still passes. The rule drops a packet before the
// router's connection tracking records it, so a broken path leaves no
// trace: were it cut further on, the router would remember the mappings
// its member's unanswered connections made, and let the other end's
// packets in through them once the path healed, unasked (as a router does
// for two minutes after such a try).
func (tp *topo) cut(ns, addr string) {
	tp.t.Helper()
	rules := "table ip cut {\n\tchain forward {\n\t\ttype filter hook forward priority -10; policy accept;\n" +
		"\t\tip daddr " + addr + " drop\n\t\tip saddr " + addr + " drop\n\t}\n}\n"
	tp.exec(ns, rules, nftBin, "-f", "-")
}

// heal undoes cut in router ns.
func (tp *topo) heal(ns string) {
	tp.t.Helper()
	tp.exec(ns, "", nftBin, "delete", "table", "ip", "cut")
}

// hostHasNone fails the test if the host's own namespace has an address
// or a route within prefix: the tests' networks live in their namespaces
// alone, and a range only they use must stay theirs.
func (tp *topo) hostHasNone(prefix string) {
	tp.t.Helper()
	for _, args := range [][]string{{"-o", "addr", "show", "to", prefix}, {"route", "show", "root", prefix}} {
		out, err := exec.Command(ipBin, args...).CombinedOutput()
		if err != nil {
			tp.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if len(bytes.TrimSpace(out)) > 0 {
			tp.t.Fatalf("the host's namespace has an address or route in %s, which the test keeps to its own namespaces:\n%s", prefix, out)
		}
	}
}

// natted is how many connections router ns has masqueraded so far: a nat
// chain sees only the first packet of each, which the rule's counter counts.
func (tp *topo) natted(ns string) int {
	tp.t.Helper()
	out, err := exec.Command(ipBin, "netns", "exec", ns, nftBin, "list", "chain", "ip", "nat", "post").CombinedOutput()
	if err != nil {
		tp.t.Fatalf("in %s: nft list chain ip nat post: %v\n%s", ns, err, out)
	}
	m := regexp.MustCompile(`counter packets ([0-9]+)`).FindSubmatch(out)
	if m == nil {
		tp.t.Fatalf("in %s: no counter in the nat chain:\n%s", ns, out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// unreachable fails the test unless ns has no route to addr: the relay
// tests rest on members that cannot reach each other directly.
func (tp *topo) unreachable(ns, addr string) {
	tp.t.Helper()
	out, err := exec.Command(ipBin, "-n", ns, "route", "get", addr).CombinedOutput()
	if err == nil {
		tp.t.Fatalf("%s has a route to %s, the test needs none:\n%s", ns, addr, out)
	}
}

// destroy kills whatever still runs in the network's namespaces (only
// processes this test started can be in them), then deletes the
// namespaces, and with them every bridge and veth. The processes' own
// cleanups stop them first; this is for what they missed, because a
// namespace with a process in it outlives `ip netns del`.
func (tp *topo) destroy() {
	for i := len(tp.nss) - 1; i >= 0; i-- {
		ns := tp.nss[i]
		for _, pid := range killNetns(ns) {
			tp.t.Logf("killed pid %d, left running in %s", pid, ns)
		}
		if out, err := exec.Command(ipBin, "netns", "del", ns).CombinedOutput(); err != nil {
			tp.t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	}
}

// killNetns kills every process in namespace ns and returns their pids.
func killNetns(ns string) []int {
	out, err := exec.Command(ipBin, "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range bytes.Fields(out) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			pids = append(pids, pid)
		}
	}
	return pids
}

// staleName matches the namespaces newTopo names, capturing the pid of the
// test binary that made them.
var staleName = regexp.MustCompile(`^dm([0-9]+)-[0-9a-f]{6}-`)

// sweepStale deletes the namespaces of earlier runs whose test binary is
// gone: one killed by go test's -timeout runs no cleanups. A namespace whose
// maker still runs belongs to a parallel run and is left alone.
func sweepStale() {
	out, err := exec.Command(ipBin, "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := staleName.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		killNetns(f[0])
		if err := exec.Command(ipBin, "netns", "del", f[0]).Run(); err == nil {
			fmt.Fprintf(os.Stderr, "netns: deleted %s, left behind by an earlier run\n", f[0])
		}
	}
}

// cutTCP makes router ns drop the TCP it would forward to or from addr:
// only UDP passes between its network and that address.
func (tp *topo) cutTCP(ns, addr string) {
	tp.t.Helper()
	rules := "table ip cuttcp {\n\tchain forward {\n\t\ttype filter hook forward priority -10; policy accept;\n" +
		"\t\tip daddr " + addr + " meta l4proto tcp drop\n\t\tip saddr " + addr + " meta l4proto tcp drop\n\t}\n}\n"
	tp.exec(ns, rules, nftBin, "-f", "-")
}
