package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ProtocolID names the frame protocol. A stream carries requests and their
// answers in turn, for as long as both ends keep it: a peer's raft messages
// go over one long-lived stream, pings and catch-up over others.
//
// A request is a 4-byte big-endian length and the frame; an answer is a
// 2-byte status (HTTP's codes: 200, 400, 403, 409, 413, 429, 503) a
// 4-byte length and the body. A request has no deadline here but the
// sender's: a join request waits for its commit (see node's joinserve.go).
const ProtocolID protocol.ID = "/demes/frame/1"

// clearEvery is how often the dial backoff of a peer we have no connection
// to may be cleared.
const clearEvery = 2 * time.Second

// directAddrs returns the addresses of info that are not a relay's.
func directAddrs(info peer.AddrInfo) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range info.Addrs {
		if !isCircuit(a) {
			out = append(out, a)
		}
	}
	return out
}

// upgradeEvery is how often a direct connection is tried to a peer reached
// only through a relay although its URL lists direct addresses.
const upgradeEvery = 10 * time.Second

// preferDirect tries, in the background, a direct connection to a peer that
// this host reaches only through a relay while its URL lists direct
// addresses: two members on one LAN that first met through the relay would
// otherwise stay relayed, since a relayed connection satisfies every new
// stream, and libp2p punches holes only from public addresses.
func (p *Host) preferDirect(id peer.ID, addrs []ma.Multiaddr) {
	p.mu.Lock()
	if time.Since(p.upgraded[id]) < upgradeEvery || p.ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.upgraded[id] = time.Now()
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		err := p.h.Connect(network.WithForceDirectDial(ctx, "a direct path beside the relay"), peer.AddrInfo{ID: id, Addrs: addrs})
		p.log.Debug().Err(err).Str("peer", id.String()).Msg("tried a direct connection to a peer reached through a relay")
	}()
}

// maxIdle bounds the idle streams kept per peer.
const maxIdle = 4

// serveIdle is how long a stream may sit between two requests before the
// serving side closes it (the sender opens another when it needs one).
const serveIdle = 2 * time.Minute

// Handler answers one frame from the peer src (its peer id). It reads the
// frame from body, of size bytes, as far as it wants: a handler that
// refuses a frame after its first bytes leaves the rest unread, and the
// stream is then closed instead of reused. It returns an HTTP status code
// and the answer's body. Its context ends when the peer goes away (resets
// or closes the stream) while it runs past watchAfter, so that a handler
// that waits on purpose stops when nobody waits for its answer.
type Handler func(ctx context.Context, src string, size int64, body io.Reader) (code int, resp []byte)

// SetHandler sets the function that answers frames; until it is set, every
// frame is answered 503.
func (p *Host) SetHandler(h Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handler = h
}

// StatusError is a peer's answer other than 200.
type StatusError struct {
	Peer string
	Code int
	Body []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("peer %s answered %d: %.200s", e.Peer, e.Code, e.Body)
}

// strangerStreams bounds the streams served at once to a peer that
// Config.Known does not know. Every peer may open streams, since a member
// that joined while this node was away is one (it is answered that this
// node is behind), but libp2p bounds the streams open to the host in all
// (about 1,250 on a machine with 8 GB), and bounds a peer's only at about
// 75: a few strangers' idle streams, from one address (8 connections,
// each a peer id of its own), each waiting serveIdle for a request, would
// leave no stream to the members. A stranger's stream over the bound is
// reset at once.
const strangerStreams = 4

// stranger reports whether id is a peer Config.Known does not know.
func (p *Host) stranger(id peer.ID) bool {
	k, ok := SignKey(id)
	return !ok || p.cfg.Known == nil || !p.cfg.Known(k)
}

// takeStranger counts a stream of stranger id, or reports false when it
// has strangerStreams served already.
func (p *Host) takeStranger(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.strangers[id] >= strangerStreams {
		return false
	}
	p.strangers[id]++
	return true
}

func (p *Host) giveStranger(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.strangers[id]--; p.strangers[id] <= 0 {
		delete(p.strangers, id)
	}
}

func (p *Host) serve(s network.Stream) {
	if id := s.Conn().RemotePeer(); p.stranger(id) {
		if !p.takeStranger(id) {
			s.Reset()
			return
		}
		defer p.giveStranger(id)
	}
	defer s.Close()
	src := source(s.Conn())
	var head [4]byte
	for {
		s.SetReadDeadline(time.Now().Add(serveIdle))
		if _, err := io.ReadFull(s, head[:]); err != nil {
			return
		}
		size := int64(binary.BigEndian.Uint32(head[:]))
		if size > p.cfg.MaxFrame {
			refuseUnread(s, 413, []byte("request too large"))
			return
		}
		p.mu.Lock()
		h := p.handler
		p.mu.Unlock()
		body := newFrameReader(s, size)
		code, resp := 503, []byte("not serving yet")
		if h != nil {
			// The frame's reader has the stream's deadline: a peer that
			// stalls mid-frame holds this goroutine no longer than that.
			s.SetReadDeadline(time.Now().Add(30 * time.Second))
			ctx, w := watchPeer(s, body)
			code, resp = h(ctx, src, size, body)
			if w.stop() {
				s.Reset() // the peer went away: nobody reads the answer
				return
			}
		}
		if body.N > 0 {
			// Unread: the frame's rest would be taken for the next
			// request. The peer opens a new stream.
			refuseUnread(s, code, resp)
			return
		}
		if err := writeAnswer(s, code, resp); err != nil {
			s.Reset()
			return
		}
	}
}

// refuseUnread answers a frame left (partly) unread and ends the stream:
// the peer reads the answer, and learns it may stop sending the rest.
func refuseUnread(s network.Stream, code int, resp []byte) {
	if err := writeAnswer(s, code, resp); err != nil {
		s.Reset()
		return
	}
	s.CloseWrite()
	s.CloseRead()
}

// source names where a stream comes from, for the node's rate limits per
// source: the remote IP address of a direct connection (a new key per
// attempt costs nothing; a new address does), the peer id for a relayed one
// (whose address is the relay's, shared by everyone it relays). A relayed
// connection is one with a circuit address, limited or not: our relays set
// no limit, and libp2p marks limited only the connections a relay limits.
func source(c network.Conn) string {
	if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil && !c.Stat().Limited && !isCircuit(c.RemoteMultiaddr()) {
		if ip.To4() != nil {
			return ip.To4().String()
		}
		// Per /64, as over HTTP (node.sourceOf): one host usually has
		// a whole /64.
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return c.RemotePeer().String()
}

func writeAnswer(s network.Stream, code int, body []byte) error {
	s.SetWriteDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 6, 6+len(body))
	binary.BigEndian.PutUint16(b, uint16(code))
	binary.BigEndian.PutUint32(b[2:], uint32(len(body)))
	_, err := s.Write(append(b, body...))
	return err
}

// Post sends frame to the peer a p2p URL names and returns its answer: the
// body for 200, a *[StatusError] otherwise. It implements node.Link for p2p
// URLs.
func (p *Host) Post(ctx context.Context, url string, frame []byte) ([]byte, error) {
	if int64(len(frame)) > p.cfg.MaxFrame {
		return nil, fmt.Errorf("frame of %d bytes is over the limit of %d", len(frame), p.cfg.MaxFrame)
	}
	info, err := p.resolve(url)
	if err != nil {
		return nil, err
	}
	if info.ID == p.h.ID() {
		return nil, errors.New("that p2p URL is this node's own")
	}
	for attempt := 0; ; attempt++ {
		s, reused, err := p.stream(ctx, info)
		if err != nil {
			return nil, fmt.Errorf("reach %s: %w", info.ID, err)
		}
		resp, err := roundTrip(ctx, s, frame, p.cfg.MaxFrame)
		if err == nil {
			p.putIdle(info.ID, s)
			return resp, nil
		}
		p.dropSuperseded(ctx, s.Conn(), err)
		s.Reset()
		var se *StatusError
		if errors.As(err, &se) {
			se.Peer = info.ID.String()
			return nil, se
		}
		// A stream kept idle may have died with its connection (or been
		// closed by the peer) since: one more try, on a new one.
		if !reused || attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("peer %s: %w", info.ID, err)
		}
	}
}

// resolve parses a p2p URL once, and makes its addresses the ones the
// peerstore has from URLs for the peer it names: those of another URL used
// for the peer before, and not in this one, are dropped. libp2p dials every
// address it has for a peer, lowest port first and 8 at a time, so the
// addresses of every URL a member ever had, kept for good, let whoever put
// addresses that accept and never answer into them (a lying peer, in
// identify, or the member itself) keep the others from reaching it again
// for the dial timeout, whatever its URL says by then.
func (p *Host) resolve(url string) (peer.AddrInfo, error) {
	p.mu.Lock()
	info, ok := p.urls[url]
	now := ok && p.lastURL[info.ID] == url
	p.mu.Unlock()
	if now {
		return info, nil
	}
	if !ok {
		var err error
		if info, err = ParseURL(url); err != nil {
			return info, err
		}
	}
	p.resolveMu.Lock()
	defer p.resolveMu.Unlock()
	p.mu.Lock()
	if len(p.urls) > 4096 {
		clear(p.urls) // a bound against junk URLs; parsed again when used
	}
	p.urls[url] = info
	prev, had := p.lastAddrs[info.ID]
	if len(p.lastURL) > 4096 {
		clear(p.lastURL)
		clear(p.lastAddrs)
	}
	p.lastURL[info.ID], p.lastAddrs[info.ID] = url, info.Addrs
	p.mu.Unlock()
	ps := p.h.Peerstore()
	if had {
		var stale []ma.Multiaddr
		for _, a := range prev {
			if !slices.ContainsFunc(info.Addrs, a.Equal) {
				stale = append(stale, a)
			}
		}
		ps.SetAddrs(info.ID, stale, 0)
	}
	ps.AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
	return info, nil
}

func (p *Host) stream(ctx context.Context, info peer.AddrInfo) (network.Stream, bool, error) {
	id := info.ID
	p.mu.Lock()
	if q := p.idle[id]; len(q) > 0 {
		s := q[len(q)-1]
		p.idle[id] = q[:len(q)-1]
		p.mu.Unlock()
		return s, true, nil
	}
	p.mu.Unlock()
	// Asked without p.mu held: libp2p calls disconnected, which takes
	// p.mu, from its own goroutines. Only for a new stream: a kept one
	// costs the hot path nothing more.
	path := p.path(id)
	direct := directAddrs(info)
	p.mu.Lock()
	if path != "direct" && len(direct) > 0 && time.Since(p.cleared[id]) >= clearEvery {
		// libp2p backs off from an address whose dial failed (for
		// seconds and growing): a member that restarted within them
		// would stay unreached, or be dialed over QUIC alone, whose
		// end nobody notices (see tcpFirst). Once per clearEvery, and
		// never for a peer reached through a relay: the relay limits
		// the connections each address opens, and a member that
		// dials it too often is refused its slot.
		p.cleared[id] = time.Now()
		if sw, ok := p.h.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(id)
		}
	}
	p.mu.Unlock()
	if path == "relayed" && len(direct) > 0 {
		p.preferDirect(id, direct)
	}
	// A relayed ("limited") connection is fine: everything on it is
	// signed, and hole punching replaces it with a direct one when it can.
	s, err := p.h.NewStream(network.WithAllowLimitedConn(ctx, "demes frames"), id, ProtocolID)
	return s, false, err
}

func (p *Host) putIdle(id peer.ID, s network.Stream) {
	s.SetDeadline(time.Time{})
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[id]) >= maxIdle || p.ctx.Err() != nil {
		s.Close()
		return
	}
	p.idle[id] = append(p.idle[id], s)
}

func roundTrip(ctx context.Context, s network.Stream, frame []byte, max int64) ([]byte, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(30 * time.Second)
	}
	s.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { s.SetDeadline(time.Now()) })
	defer stop()
	req := make([]byte, 4, 4+len(frame))
	binary.BigEndian.PutUint32(req, uint32(len(frame)))
	// Written beside the read of the answer: a peer that refuses a frame
	// by its first bytes answers before reading the rest, and over yamux
	// (TCP) nothing stops the write then; the answer says why, and the
	// stream is reset to end the write.
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(append(req, frame...))
		werr <- err
	}()
	var head [6]byte
	if _, err := io.ReadFull(s, head[:]); err != nil {
		s.Reset()
		if w := <-werr; w != nil {
			return nil, w
		}
		return nil, err
	}
	code, size := int(binary.BigEndian.Uint16(head[:])), int64(binary.BigEndian.Uint32(head[2:]))
	var body []byte
	var err error
	if size > max {
		err = fmt.Errorf("answer of %d bytes is over the limit", size)
	} else {
		body = make([]byte, size)
		_, err = io.ReadFull(s, body)
	}
	if err == nil && code == 200 {
		// The peer read the whole frame before it answered: the write
		// is done, or about to return.
		if err := <-werr; err != nil {
			return nil, err
		}
		return body, nil
	}
	select {
	case <-werr:
	default:
		s.Reset() // refused early: end the write (the caller resets too)
		<-werr
	}
	if err != nil {
		return nil, err
	}
	return nil, &StatusError{Code: code, Body: body}
}

// StatusCode returns the peer's status code.
func (e *StatusError) StatusCode() int { return e.Code }

// ResponseBody returns the body of the peer's answer.
func (e *StatusError) ResponseBody() []byte { return e.Body }
