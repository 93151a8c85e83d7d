package crypto_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/demes/demes/crypto"
	"github.com/demes/demes/identity"
)

func Example() {
	alice, _ := identity.FromSeed(bytes.Repeat([]byte{1}, 32))
	bob, _ := identity.FromSeed(bytes.Repeat([]byte{2}, 32))
	group := crypto.NewGroupID()
	counter := crypto.NewCounter()

	// Alice writes a message to the group (herself and Bob) under her
	// sender key for the membership epoch (1 here), which the message
	// carries in a key header sealed to the members, and signs the envelope
	// that carries it. (In a group, the envelope's payload is a chat entry
	// body holding the message id and the sealed message.)
	key := crypto.NewKeyRing(alice, group).SealingKey(1, nil)
	m := &crypto.Message{Group: group, ID: crypto.NewMessageID(), Time: time.Now().UnixNano(), Body: []byte("hello, Bob")}
	sealed, err := crypto.SealMessage(alice, m, key, []identity.PublicID{alice.Public(), bob.Public()})
	if err != nil {
		panic(err)
	}
	frame, err := crypto.Sign(alice, &crypto.Envelope{
		Type: crypto.TypeChat, Group: group, Counter: counter.Next(), Time: time.Now().UnixNano(), Payload: sealed,
	})
	if err != nil {
		panic(err)
	}

	// Bob verifies the frame, checks it is fresh, and opens the message.
	replay := crypto.NewReplayFilter(time.Minute)
	e, err := crypto.Verify(frame)
	if err != nil {
		panic(err)
	}
	// (Here Bob checks that e.Sender is a member of e.Group.)
	if err := replay.Check(e, time.Now()); err != nil {
		panic(err)
	}
	// Bob reads which key the message is under, learns it from the header
	// (once: his key ring keeps it for Alice's later messages), then opens.
	info, err := crypto.ReadSealed(e.Payload)
	if err != nil {
		panic(err)
	}
	bobKeys := crypto.NewKeyRing(bob, e.Group)
	aliceKey, err := bobKeys.Open(crypto.KeyRef{Sender: e.Sender, Epoch: info.Epoch, ID: info.KeyID}, e.Payload)
	if err != nil {
		panic(err)
	}
	opened, err := crypto.OpenMessage(aliceKey, e.Group, e.Payload, e.Sender, m.ID)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from %s: %s\n", e.Type, opened.Author.Fingerprint(), opened.Body)

	// The same frame a second time is a replay.
	fmt.Println(replay.Check(e, time.Now()) != nil)
	// Output:
	// chat from d341 d769 1e1e b07d: hello, Bob
	// true
}

func ExampleChain() {
	var group crypto.GroupID // all zero, for a reproducible output
	c := crypto.NewChain(group)
	for i, entry := range []string{"genesis", "hello", "bye"} {
		if err := c.Append(uint64(i+1), []byte(entry)); err != nil {
			panic(err)
		}
	}
	fmt.Printf("head at index %d: %x\n", c.Index, c.Head[:8])
	// Output:
	// head at index 3: 99206c5fd1042b73
}
