package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/identity"
	"github.com/demes/demes/internal/testutil"
	"github.com/demes/demes/keys"
)

// secretNeedles returns the forms in which id's private keys could leak: the
// key texts (DEMES-SECRET-KEY-1..., AGE-SECRET-KEY-1..., in either case),
// and the raw keys (the 64 private bytes, the ed25519 seed and private key,
// the X25519 scalar) in hex and in each base64 alphabet, plus the hex of
// their first 8 bytes, for a key cut short in a log line.
func secretNeedles(id *identity.Identity) map[string]string {
	priv := id.Private()
	seed, scalar := priv[:32], priv[32:]
	raw := map[string][]byte{
		"private bytes": priv, "ed25519 seed": seed, "X25519 scalar": scalar,
		"ed25519 private key": ed25519.NewKeyFromSeed(seed),
	}
	out := map[string]string{}
	for name, s := range map[string]string{"DEMES-SECRET-KEY": id.SecretKey(), "AGE-SECRET-KEY": id.AgeIdentity().String()} {
		out[name+" text"] = s
		out[name+" text in lower case"] = strings.ToLower(s)
	}
	for name, b := range raw {
		out[name+" (hex)"] = hex.EncodeToString(b)
		out[name+" (HEX)"] = strings.ToUpper(hex.EncodeToString(b))
		out[name+" (hex prefix)"] = hex.EncodeToString(b[:8])
		out[name+" (base64)"] = base64.StdEncoding.EncodeToString(b)
		out[name+" (raw base64)"] = base64.RawStdEncoding.EncodeToString(b)
		out[name+" (base64url)"] = base64.URLEncoding.EncodeToString(b)
		out[name+" (raw base64url)"] = base64.RawURLEncoding.EncodeToString(b)
	}
	return out
}

// TestNothingSecretInLogsMetricsOrHealth runs two real nodes at the most
// verbose log level, in JSON, with metrics; they form a group, exchange
// messages, take a backup. Then everything an operator collects (both
// nodes' logs, /metrics, /healthz, /readyz, demes health, demes backup's
// output) is searched for the nodes' private keys in every usual encoding,
// the identity's passphrase, the API tokens and the messages' text. None
// may appear. The UI address on serve's stdout carries the token by design
// (the contract prints it for the person), so that one line is left out.
func TestNothingSecretInLogsMetricsOrHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	t.Parallel()
	dir := t.TempDir()
	passFile := filepath.Join(dir, "passphrase")
	pass := "tr0ub4dor-" + rand.Text()
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, bob := newServeProc(t, "alice"), newServeProc(t, "bob")
	// Alice's identity is sealed with a passphrase, bob's is not.
	wantExit(t, alice.demes("keygen", "--force", "--name", "alice", "--passphrase-file", passFile), 0)
	metrics := map[*serveProc]string{}
	for _, p := range []*serveProc{alice, bob} {
		metrics[p] = freeAddr(t)
		p.extra = []string{"--log-level", "debug", "--log-format", "json", "--metrics", metrics[p]}
	}
	alice.extra = append(alice.extra, "--passphrase-file", passFile)
	alice.start()
	bob.start()

	r := alice.demes("group", "create", "canaries")
	wantExit(t, r, 0)
	r = bob.demes("id")
	wantExit(t, r, 0)
	code := alice.demes("invite", r.lastLine())
	wantExit(t, code, 0)
	wantExit(t, bob.demes("join", code.lastLine()), 0)
	texts := []string{"canary from alice " + rand.Text(), "canary from bob " + rand.Text()}
	wantExit(t, alice.demes("send", texts[0]), 0)
	wantExit(t, bob.demes("send", texts[1]), 0)
	testutil.Eventually(t, 30*time.Second, "both canaries on both nodes", func() bool {
		for _, p := range []*serveProc{alice, bob} {
			got := msgTexts(p.messages())
			if !strings.Contains(got, texts[0]) || !strings.Contains(got, texts[1]) {
				return false
			}
		}
		return true
	})

	var hay strings.Builder
	for _, p := range []*serveProc{alice, bob} {
		r := p.demes("backup", "-o", filepath.Join(dir, p.name+".backup"), "--passphrase-file", passFile)
		wantExit(t, r, 0)
		hay.WriteString(r.stdout + r.stderr)
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			resp, err := http.Get("http://" + metrics[p] + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if path == "/metrics" && !strings.Contains(string(b), "demes_group_members{") {
				t.Fatalf("%s %s holds no group figures: the test would search the wrong output\n%s", p.name, path, b)
			}
			hay.Write(b)
		}
		r = p.demes("health", "--ready", "--metrics", metrics[p])
		wantExit(t, r, 0)
		hay.WriteString(r.stdout + r.stderr)
	}
	// Stop both cleanly, so the logs hold the shutdown too.
	for _, p := range []*serveProc{alice, bob} {
		p.cmd.Process.Signal(os.Interrupt)
		if err := p.wait(); err != nil {
			t.Errorf("%s: serve after SIGINT: %v", p.name, err)
		}
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			t.Fatal(err)
		}
		log := regexp.MustCompile(`(?m)^http://[^ ]+/#token=\S+$`).ReplaceAllString(string(b), "(the UI address)")
		if !strings.Contains(log, `"level":"debug"`) {
			t.Fatalf("%s's log has no debug lines: the test would search a quiet log", p.name)
		}
		hay.WriteString(log)
	}

	needles := map[string]string{"the passphrase": pass}
	for i, text := range texts {
		needles["message text "+string(rune('1'+i))] = text
		// A word of it alone, too: the random part.
		f := strings.Fields(text)
		needles["message word "+string(rune('1'+i))] = f[len(f)-1]
	}
	for _, p := range []*serveProc{alice, bob} {
		var pf func() ([]byte, error)
		if p == alice {
			pf = func() ([]byte, error) { return keys.ReadPassphraseFile(passFile) }
		}
		id, err := keys.Load(filepath.Join(p.home, identityFile), pf)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range secretNeedles(id) {
			needles[p.name+"'s "+name] = s
		}
		tok, err := os.ReadFile(filepath.Join(p.home, tokenFile))
		if err != nil {
			t.Fatal(err)
		}
		needles[p.name+"'s API token"] = strings.TrimSpace(string(tok))
	}
	// The needles are real: bob's identity file holds his key text, and
	// the messages are there to read through the API.
	if b, _ := os.ReadFile(filepath.Join(bob.home, identityFile)); !strings.Contains(string(b), needles["bob's DEMES-SECRET-KEY text"]) {
		t.Fatalf("bob's key text is not in his identity file: the needles are wrong")
	}
	s := hay.String()
	if len(s) < 10_000 {
		t.Fatalf("only %d bytes of logs and answers to search", len(s))
	}
	for name, needle := range needles {
		if i := strings.Index(s, needle); i >= 0 {
			t.Errorf("%s found in the logs, metrics or health output, at byte %d", name, i)
		}
	}
}
