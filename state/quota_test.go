package state

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/demes/demes/crypto"
)

// quotaWorld is a group of three voters (a, the admin, b and c) whose test
// signs every entry at a time it picks, relative to t0.
type quotaWorld struct {
	*world
	t0   time.Time
	keys map[int]*crypto.SenderKey
}

func newQuotaWorld(t *testing.T) *quotaWorld {
	w := newWorld(t, 3)
	w.genesis()
	for i := 1; i < 3; i++ {
		if r := w.join(i); r.Err != nil {
			t.Fatal(r.Err)
		}
		if r := w.conf(w.ids[0], crypto.TypePromote, &TargetBody{Target: key(w.ids[i]), Voter: true}, RaftID(w.ids[i].Public().Sign), AddVoter); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	// Every entry so far was signed before t0.
	return &quotaWorld{world: w, t0: time.Now().Add(time.Millisecond), keys: map[int]*crypto.SenderKey{}}
}

// sign signs body as member i at t0+at.
func (w *quotaWorld) sign(i int, typ crypto.Type, at time.Duration, body any) []byte {
	w.t.Helper()
	return w.signAt(i, typ, w.t0.Add(at).UnixNano(), body)
}

// signAt signs body as member i at when (unix nanoseconds).
func (w *quotaWorld) signAt(i int, typ crypto.Type, when int64, body any) []byte {
	w.t.Helper()
	w.ctr++
	f, err := crypto.Sign(w.ids[i], &crypto.Envelope{Type: typ, Group: w.group, Counter: w.ctr, Time: when, Payload: mustEncode(w.t.(*testing.T), body)})
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// chatFrame is a chat message of size bytes from member i signed at when,
// under i's sender key (with the key header the first time).
func (w *quotaWorld) chatFrame(i int, when int64, size int) []byte {
	w.t.Helper()
	k := w.keys[i]
	var header = w.s.Recipients()
	if k != nil {
		header = nil
	} else {
		k = crypto.NewSenderKey(w.group, w.ids[i].Public().Sign, w.s.Epoch)
		w.keys[i] = k
	}
	id := crypto.NewMessageID()
	sealed, err := crypto.SealMessage(w.ids[i], &crypto.Message{Group: w.group, ID: id, Time: 1, Body: bytes.Repeat([]byte{'x'}, max(size, 1))}, k, header)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.signAt(i, crypto.TypeChat, when, &ChatBody{ID: id[:], Sealed: sealed})
}

// quotaStep is one entry of a quota case: a chat message of member who (0 is
// a, the admin), or with set a settings change, or with clock a latency map
// (which moves who's vote in the voters' clock), signed at at.
type quotaStep struct {
	who   int
	at    time.Duration
	size  int // the chat body in bytes; 0: a short message
	clock bool
	set   *SettingsBody
	// when, if not 0, is the signing time itself, in unix nanoseconds.
	when int64
	want string // "" to be accepted, else in the rejection
}

func repeat(n int, s quotaStep) []quotaStep {
	out := make([]quotaStep, n)
	for i := range out {
		out[i] = s
		out[i].at += time.Duration(i) * time.Millisecond
	}
	return out
}

func steps(parts ...any) []quotaStep {
	var out []quotaStep
	for _, p := range parts {
		switch p := p.(type) {
		case quotaStep:
			out = append(out, p)
		case []quotaStep:
			out = append(out, p...)
		}
	}
	return out
}

const overMsgs, overBytes = "over quota: 2 messages in a minute", "bytes of messages today"

// TestQuota is the quota rule as a table: each case sets the group's quota
// and applies a member's messages at chosen signing times. Every entry's
// outcome is also what CheckQuota predicted for it, an entry over quota
// changes nothing, and a state restored from a snapshot taken right before
// each entry decides it the same way and ends in the same state.
func TestQuota(t *testing.T) {
	s, m := time.Second, time.Minute
	two := &SettingsBody{MsgsPerMinute: 2}
	cases := []struct {
		name  string
		steps []quotaStep
	}{
		{"default: 120 messages a minute", steps(
			repeat(120, quotaStep{who: 1}),
			quotaStep{who: 1, at: 30 * s, want: "over quota: 120 messages in a minute"},
			quotaStep{who: 1, at: 61 * s})},
		{"the limit set, and the next minute", steps(
			quotaStep{who: 0, set: two},
			quotaStep{who: 1}, quotaStep{who: 1, at: 10 * s},
			quotaStep{who: 1, at: 59 * s, want: overMsgs},
			quotaStep{who: 1, at: 60 * s}, quotaStep{who: 1, at: 61 * s},
			quotaStep{who: 1, at: 62 * s, want: overMsgs})},
		{"a minute starts at its first message", steps(
			quotaStep{who: 0, set: two},
			quotaStep{who: 1}, quotaStep{who: 1, at: 50 * s},
			quotaStep{who: 1, at: 70 * s}, quotaStep{who: 1, at: 80 * s},
			quotaStep{who: 1, at: 100 * s, want: overMsgs},
			quotaStep{who: 1, at: 130 * s})},
		{"one member over quota, the others not", steps(
			quotaStep{who: 0, set: two},
			quotaStep{who: 1}, quotaStep{who: 1, at: s},
			quotaStep{who: 1, at: 2 * s, want: overMsgs},
			quotaStep{who: 2, at: 2 * s}, quotaStep{who: 0, at: 3 * s}, quotaStep{who: 2, at: 3 * s},
			quotaStep{who: 2, at: 4 * s, want: overMsgs})},
		{"dated back: counted at the last message", steps(
			quotaStep{who: 0, set: two},
			quotaStep{who: 1}, quotaStep{who: 1, at: s},
			quotaStep{who: 1, at: -10 * m, want: overMsgs},
			quotaStep{who: 1, at: -48 * time.Hour, want: overMsgs},
			// The earliest time there is: window arithmetic that
			// overflowed would open a new minute.
			quotaStep{who: 1, when: math.MinInt64, want: overMsgs},
			// The latest: counted QuotaLead after the voters' clock.
			quotaStep{who: 1, when: math.MaxInt64}, quotaStep{who: 1, when: math.MaxInt64},
			quotaStep{who: 1, when: math.MaxInt64, want: overMsgs})},
		{"dated ahead: no further than the voters' clock allows", steps(
			quotaStep{who: 0, set: two},
			quotaStep{who: 1}, quotaStep{who: 1, at: s},
			// Counted at most QuotaLead after the voters' clock (t0 at
			// most): one new minute, then no more.
			quotaStep{who: 1, at: time.Hour}, quotaStep{who: 1, at: 2 * time.Hour},
			quotaStep{who: 1, at: 3 * time.Hour, want: overMsgs},
			// b signs far ahead itself: one voter of three moves nothing.
			quotaStep{who: 1, at: 5 * time.Hour, clock: true},
			quotaStep{who: 1, at: 6 * time.Hour, want: overMsgs},
			// a and c move on ten minutes: so does the clock.
			quotaStep{who: 0, at: 10 * m, clock: true}, quotaStep{who: 2, at: 10 * m, clock: true},
			quotaStep{who: 1, at: 7 * time.Hour})},
		{"bytes per day", steps(
			quotaStep{who: 0, set: &SettingsBody{BytesPerDay: MinBytesPerDay}},
			// Frames of a bit over 64 KiB: 15 fit in 1 MiB, 16 do not.
			repeat(15, quotaStep{who: 1, size: crypto.MaxBody}),
			quotaStep{who: 1, at: 2 * m, size: crypto.MaxBody, want: overBytes},
			// What is left of the day still takes a short one.
			quotaStep{who: 1, at: 3 * m},
			// Other members have their own day.
			quotaStep{who: 2, at: 3 * m, size: crypto.MaxBody},
			// A day later by the voters' clock, b sends again.
			quotaStep{who: 0, at: 24 * time.Hour, clock: true}, quotaStep{who: 2, at: 24 * time.Hour, clock: true},
			quotaStep{who: 1, at: 24*time.Hour + m, size: crypto.MaxBody})},
		{"a lower quota takes effect at once", steps(
			repeat(3, quotaStep{who: 1}),
			quotaStep{who: 0, at: s, set: two},
			quotaStep{who: 1, at: 2 * s, want: "over quota: 3 messages in a minute"},
			quotaStep{who: 1, at: 64 * s})},
		{"a higher quota too", steps(
			quotaStep{who: 0, set: two},
			repeat(2, quotaStep{who: 1}),
			quotaStep{who: 1, at: s, want: overMsgs},
			quotaStep{who: 0, at: 2 * s, set: &SettingsBody{MsgsPerMinute: 3}},
			quotaStep{who: 1, at: 3 * s},
			quotaStep{who: 1, at: 4 * s, want: "over quota: 3 messages in a minute"})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newQuotaWorld(t)
			for k, st := range tc.steps {
				when := st.when
				if when == 0 {
					when = w.t0.Add(st.at).UnixNano()
				}
				var frame []byte
				switch {
				case st.set != nil:
					frame = w.signAt(st.who, crypto.TypeSettings, when, st.set)
				case st.clock:
					frame = w.signAt(st.who, crypto.TypeLatencyMap, when, &LatencyBody{})
				default:
					frame = w.chatFrame(st.who, when, st.size)
				}
				sender := w.ids[st.who].Public().Sign
				fits, why := w.s.CheckQuota(sender, []QuotaItem{{Time: when, Size: len(frame)}})
				snap, err := w.s.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				restored, err := Restore(w.group, snap)
				if err != nil {
					t.Fatal(err)
				}
				before := semantic(t, w.s)
				r := w.raw(frame)
				if again := restored.ApplyEntry(w.index, frame); !reflect.DeepEqual(again, r) {
					t.Fatalf("step %d: restored from a snapshot, the state said %v, not %v", k, again.Err, r.Err)
				}
				if !reflect.DeepEqual(restored, w.s) {
					t.Fatalf("step %d: the restored state differs after the entry", k)
				}
				if st.want == "" {
					if r.Err != nil {
						t.Fatalf("step %d (member %d at %v): %v", k, st.who, st.at, r.Err)
					}
				} else {
					wantRejected(t, r, st.want)
					if !bytes.Equal(semantic(t, w.s), before) {
						t.Fatalf("step %d: the entry over quota changed the state", k)
					}
				}
				if st.set == nil && !st.clock && (fits == 1) != (r.Err == nil) {
					t.Fatalf("step %d: CheckQuota said %d fit (%v), the state machine %v", k, fits, why, r.Err)
				}
			}
		})
	}
}

// TestCheckQuotaQueue: CheckQuota counts a queue in order and says why the
// first one over is.
func TestCheckQuotaQueue(t *testing.T) {
	w := newQuotaWorld(t)
	if r := w.raw(w.sign(0, crypto.TypeSettings, 0, &SettingsBody{MsgsPerMinute: 3})); r.Err != nil {
		t.Fatal(r.Err)
	}
	b := w.ids[1].Public().Sign
	if r := w.raw(w.chatFrame(1, w.t0.UnixNano(), 0)); r.Err != nil {
		t.Fatal(r.Err)
	}
	at := func(d time.Duration) QuotaItem { return QuotaItem{Time: w.t0.Add(d).UnixNano(), Size: 500} }
	n, err := w.s.CheckQuota(b, []QuotaItem{at(time.Second), at(2 * time.Second), at(3 * time.Second), at(61 * time.Second)})
	if n != 2 || err == nil || !strings.Contains(err.Error(), "message 3 of 4") {
		t.Fatalf("CheckQuota: %d, %v; want 2 and the third message over quota", n, err)
	}
	if n, err := w.s.CheckQuota(b, []QuotaItem{at(time.Second), at(61 * time.Second), at(62 * time.Second), at(63 * time.Second)}); n != 4 || err != nil {
		t.Fatalf("CheckQuota across a minute: %d, %v", n, err)
	}
	outsider := [32]byte{1}
	if n, err := w.s.CheckQuota(outsider, []QuotaItem{at(0)}); n != 0 || err == nil {
		t.Fatal("CheckQuota of a non-member")
	}
}

// TestQuotaRoom: QuotaRoom is a bound CheckQuota never contradicts. Over
// random usages, limits and queues (any order of signing times, windows
// starting anew or not), whenever it says there is room CheckQuota accepts
// the whole queue; and it does say so with room to spare, and not one
// message past the limit.
func TestQuotaRoom(t *testing.T) {
	w := newQuotaWorld(t)
	b := w.ids[1].Public().Sign
	m := w.s.member(b)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := w.t0.UnixNano()
	roomy := 0
	for k := range 20000 {
		w.s.Settings.MsgsPerMinute = uint32(1 + rng.IntN(8))
		w.s.Settings.BytesPerDay = uint64(1000 + rng.IntN(4000))
		m.Quota = Usage{
			Time: t0, MinuteStart: t0 - rng.Int64N(int64(2*quotaMinute)), Msgs: uint32(rng.IntN(9)),
			DayStart: t0 - rng.Int64N(int64(2*quotaDay)), Bytes: uint64(rng.IntN(5000)),
		}
		queue := make([]QuotaItem, rng.IntN(8))
		var size uint64
		for i := range queue {
			queue[i] = QuotaItem{Time: t0 + rng.Int64N(int64(3*quotaMinute)), Size: rng.IntN(900)}
			size += uint64(queue[i].Size)
		}
		if !w.s.QuotaRoom(b, len(queue), size) {
			continue
		}
		roomy++
		if n, err := w.s.CheckQuota(b, queue); n != len(queue) {
			t.Fatalf("case %d: QuotaRoom found room for %d messages of %d bytes (usage %+v, limits %d, %d), CheckQuota took %d: %v",
				k, len(queue), size, m.Quota, w.s.Settings.MsgsLimit(), w.s.Settings.BytesLimit(), n, err)
		}
	}
	if roomy < 1000 {
		t.Fatalf("QuotaRoom found room in only %d of 20000 cases: the test shows nothing", roomy)
	}
	w.s.Settings = Settings{MsgsPerMinute: 5, BytesPerDay: 10_000}
	m.Quota = Usage{Time: t0, MinuteStart: t0, Msgs: 2, DayStart: t0, Bytes: 1000}
	if !w.s.QuotaRoom(b, 3, 9000) {
		t.Error("no room for exactly what the limits leave")
	}
	if w.s.QuotaRoom(b, 4, 100) || w.s.QuotaRoom(b, 1, 9001) {
		t.Error("room past the limits")
	}
	if w.s.QuotaRoom([32]byte{1}, 0, 0) {
		t.Error("room for a non-member")
	}
}

// TestQuotaSettings: only admins set quotas; a byte quota too small for the
// largest message is refused; 0 means the default.
func TestQuotaSettings(t *testing.T) {
	w := newQuotaWorld(t)
	wantRejected(t, w.raw(w.sign(1, crypto.TypeSettings, 0, &SettingsBody{MsgsPerMinute: 1})), "only admins")
	wantRejected(t, w.raw(w.sign(0, crypto.TypeSettings, 0, &SettingsBody{BytesPerDay: MinBytesPerDay - 1})), "below the least")
	if got := w.s.Settings; got.MsgsLimit() != DefaultMsgsPerMinute || got.BytesLimit() != DefaultBytesPerDay {
		t.Fatalf("default limits %d, %d", got.MsgsLimit(), got.BytesLimit())
	}
	set := &SettingsBody{MembersInvite: true, MsgsPerMinute: 7, BytesPerDay: 3 << 20}
	if r := w.raw(w.sign(0, crypto.TypeSettings, 0, set)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if got := w.s.Settings; !reflect.DeepEqual(got, Settings{MembersInvite: true, MsgsPerMinute: 7, BytesPerDay: 3 << 20}) || got.MsgsLimit() != 7 || got.BytesLimit() != 3<<20 {
		t.Fatalf("settings %+v", got)
	}
}
