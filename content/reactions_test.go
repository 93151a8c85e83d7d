package content

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/demes/demes/api"
)

// TestReactionsKeepOnePerReactor applies random reactions, changes and
// takings back by 12 members to 3 messages, and checks the board against
// a plain map of each member's reaction to each message: each member has
// at most its latest reaction, a taken-back one is gone, and Reaction and
// Decorate's counts say the same as the map.
func TestReactionsKeepOnePerReactor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b Board
	authors := map[[16]byte]string{*ref(1): "m0", *ref(2): "m1", *ref(3): "m2"}
	lookup := func(id [16]byte) (string, bool) { a, ok := authors[id]; return a, ok }
	model := map[[16]byte]map[string]string{}
	emojis := []string{"", "👍", "🎉", "❤️"}
	for k := range 3000 {
		target := *ref(byte(1 + rng.IntN(3)))
		who := fmt.Sprintf("m%d", rng.IntN(12))
		e := emojis[rng.IntN(len(emojis))]
		if err := b.Apply(*ref(byte(10 + k%200)), who, Content{Kind: Reaction, Ref: &target, Emoji: e}, lookup); err != nil {
			t.Fatalf("reaction %d: %v", k, err)
		}
		if model[target] == nil {
			model[target] = map[string]string{}
		}
		if e == "" {
			delete(model[target], who)
		} else {
			model[target][who] = e
		}
		n := b.Note(target)
		if len(n.Reactions) != len(model[target]) {
			t.Fatalf("after reaction %d: %d reactions on the board, want %d: %+v", k, len(n.Reactions), len(model[target]), n.Reactions)
		}
		counts := map[string]int{}
		for w := range 12 {
			who := fmt.Sprintf("m%d", w)
			if got, want := n.Reaction(who), model[target][who]; got != want {
				t.Fatalf("after reaction %d: %s's reaction %q, want %q", k, who, got, want)
			}
			if e := model[target][who]; e != "" {
				counts[e]++
			}
		}
		var m api.Message
		n.Decorate(&m, "m3")
		for _, r := range m.Reactions {
			if r.Count != counts[r.Emoji] || r.Mine != (model[target]["m3"] == r.Emoji) {
				t.Fatalf("after reaction %d: shown %+v, want count %d, mine %v", k, r, counts[r.Emoji], model[target]["m3"] == r.Emoji)
			}
			delete(counts, r.Emoji)
		}
		if len(counts) != 0 {
			t.Fatalf("after reaction %d: reactions %v not shown", k, counts)
		}
	}
}
