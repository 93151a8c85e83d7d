package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/demes/demes/api"
	"github.com/demes/demes/content"
)

// Service keeps a node that can be stopped and started again in the same
// process (the demo's "stop my node" button) behind one stable value: the UI
// and the peer listener hold the Service, and it forwards to the node while
// it runs. While stopped, reads show an empty stopped node and writes fail
// with ErrStopped; the peer listener answers 503, like a node that is down.
type Service struct {
	cfg    Config
	events *broadcaster

	mu sync.Mutex
	n  *Node
}

// NewService opens the node and returns the service around it.
func NewService(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, events: newBroadcaster()}
	if err := s.StartNode(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) node() (*Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		return nil, ErrStopped
	}
	return s.n, nil
}

// Node returns the running node, or nil while stopped.
func (s *Service) Node() *Node {
	n, _ := s.node()
	return n
}

// StartNode opens the node from its store (a restart after StopNode).
func (s *Service) StartNode() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != nil {
		return nil
	}
	cfg := s.cfg
	cfg.events = s.events
	n, err := Open(cfg)
	if err != nil {
		return err
	}
	s.n = n
	s.events.publish(Event{Kind: "status"})
	return nil
}

// StopNode closes the node as a crash would look to the others: it stops
// answering at once. Its store keeps everything acknowledged.
func (s *Service) StopNode() error {
	s.mu.Lock()
	n := s.n
	s.n = nil
	s.mu.Unlock()
	if n == nil {
		return nil
	}
	err := n.Close()
	s.events.publish(Event{Kind: "status"})
	return err
}

// SetURL changes the node's peer URL (see [Node.SetURL]), and keeps it for
// the node's next start: a node stopped and started again in the demo
// advertises the latest URL, not the one the service was made with. It is
// safe for concurrent use.
func (s *Service) SetURL(url string) {
	if url == "" {
		return
	}
	// Under the lock, so that of two calls at once the node and the kept
	// configuration end with the same URL (Node.SetURL does not block).
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.URL = url
	if s.n != nil {
		s.n.SetURL(url)
	}
}

// Running reports whether the node runs.
func (s *Service) Running() bool { return s.Node() != nil }

// Close stops the node and ends the event streams.
func (s *Service) Close() error {
	err := s.StopNode()
	s.events.close()
	return err
}

// Status implements the UI backend.
func (s *Service) Status() Status {
	s.mu.Lock()
	n, cfg := s.n, s.cfg
	s.mu.Unlock()
	if n == nil {
		id := cfg.Identity.Public()
		return Status{PublicID: id.String(), Name: cfg.Name, Fingerprint: id.Fingerprint(), PeerURL: cfg.URL,
			Groups: []GroupStatus{}, Rejected: map[string]int64{}}
	}
	return n.Status()
}

// Figures returns the running node's counts for its metrics (none while it
// is stopped).
func (s *Service) Figures() Figures {
	n, err := s.node()
	if err != nil {
		return Figures{}
	}
	return n.Figures()
}

// Groups implements the UI backend.
func (s *Service) Groups() []GroupInfo {
	n, err := s.node()
	if err != nil {
		return []GroupInfo{}
	}
	return n.Groups()
}

// CreateGroup implements the UI backend.
func (s *Service) CreateGroup(ctx context.Context, name string) (GroupInfo, error) {
	n, err := s.node()
	if err != nil {
		return GroupInfo{}, err
	}
	return n.CreateGroup(ctx, name)
}

// Invite implements the UI backend.
func (s *Service) Invite(ctx context.Context, groupID, publicID string) (string, error) {
	n, err := s.node()
	if err != nil {
		return "", err
	}
	return n.Invite(ctx, groupID, publicID)
}

// InviteFor implements the UI backend.
func (s *Service) InviteFor(ctx context.Context, groupID, publicID string, ttl time.Duration) (string, error) {
	n, err := s.node()
	if err != nil {
		return "", err
	}
	return n.InviteFor(ctx, groupID, publicID, ttl)
}

// Invites implements the UI backend.
func (s *Service) Invites(groupID string) ([]PendingInvite, error) {
	n, err := s.node()
	if err != nil {
		return nil, err
	}
	return n.Invites(groupID)
}

// RevokeInvite implements the UI backend.
func (s *Service) RevokeInvite(ctx context.Context, groupID, codeOrID string) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.RevokeInvite(ctx, groupID, codeOrID)
}

// SetAdmin implements the UI backend.
func (s *Service) SetAdmin(ctx context.Context, groupID, publicID string, admin bool) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.SetAdmin(ctx, groupID, publicID, admin)
}

// SetSettings implements the UI backend.
func (s *Service) SetSettings(ctx context.Context, groupID string, settings GroupSettings) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.SetSettings(ctx, groupID, settings)
}

// MarkRead implements the UI backend.
func (s *Service) MarkRead(ctx context.Context, groupID, messageID string) (uint64, error) {
	n, err := s.node()
	if err != nil {
		return 0, err
	}
	return n.MarkRead(ctx, groupID, messageID)
}

// ReadReceipts implements the UI backend; a stopped node answers what its
// store says when it starts again, so false until then.
func (s *Service) ReadReceipts() bool {
	n, err := s.node()
	if err != nil {
		return false
	}
	return n.ReadReceipts()
}

// SetReadReceipts implements the UI backend.
func (s *Service) SetReadReceipts(on bool) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.SetReadReceipts(on)
}

// Rekey implements the UI backend.
func (s *Service) Rekey(ctx context.Context, groupID string) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.Rekey(ctx, groupID)
}

// Reform implements the UI backend.
func (s *Service) Reform(ctx context.Context, groupID string, req api.ReformRequest) (api.ReformResult, error) {
	n, err := s.node()
	if err != nil {
		return api.ReformResult{}, err
	}
	return n.Reform(ctx, groupID, req)
}

// Rename implements the UI backend.
func (s *Service) Rename(ctx context.Context, groupID, name string) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.Rename(ctx, groupID, name)
}

// Remove implements the UI backend.
func (s *Service) Remove(ctx context.Context, groupID, publicID string) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.Remove(ctx, groupID, publicID)
}

// Leave implements the UI backend.
func (s *Service) Leave(ctx context.Context, groupID string) error {
	n, err := s.node()
	if err != nil {
		return err
	}
	return n.Leave(ctx, groupID)
}

// Reconnect implements the UI backend.
func (s *Service) Reconnect(ctx context.Context, groupID, target string) (ReconnectResult, error) {
	n, err := s.node()
	if err != nil {
		return ReconnectResult{}, err
	}
	return n.Reconnect(ctx, groupID, target)
}

// AddKeeper implements the UI backend.
func (s *Service) AddKeeper(ctx context.Context, groupID, target, id string) (api.KeeperResponse, error) {
	n, err := s.node()
	if err != nil {
		return api.KeeperResponse{}, err
	}
	code, keeper, err := n.AddKeeper(ctx, groupID, target, id)
	if err != nil {
		return api.KeeperResponse{}, err
	}
	return api.KeeperResponse{Code: code, Keeper: keeper, Offered: strings.HasPrefix(target, "http")}, nil
}

// Join implements the UI backend.
func (s *Service) Join(ctx context.Context, code string) (GroupInfo, error) {
	n, err := s.node()
	if err != nil {
		return GroupInfo{}, err
	}
	return n.Join(ctx, code)
}

// Send implements the UI backend.
func (s *Service) Send(ctx context.Context, groupID, text string, wait time.Duration) (Message, error) {
	n, err := s.node()
	if err != nil {
		return Message{}, err
	}
	return n.Send(ctx, groupID, text, wait)
}

// Messages implements the UI backend.
func (s *Service) Messages(groupID string) ([]Message, error) {
	n, err := s.node()
	if err != nil {
		return nil, err
	}
	ms, err := n.Messages(groupID)
	n.files.decorateAll(ms)
	return ms, err
}

// Search implements the UI backend.
func (s *Service) Search(ctx context.Context, groupID, query string, limit int) ([]Message, error) {
	n, err := s.node()
	if err != nil {
		return nil, err
	}
	ms, err := n.Search(ctx, groupID, query, limit)
	n.files.decorateAll(ms)
	return ms, err
}

// MessagePage implements the UI backend.
func (s *Service) MessagePage(groupID string, limit int, before string) (MessagePage, error) {
	n, err := s.node()
	if err != nil {
		return MessagePage{}, err
	}
	p, err := n.MessagePage(groupID, limit, before)
	n.files.decorateAll(p.Messages)
	return p, err
}

// Transcript implements the UI backend.
func (s *Service) Transcript(ctx context.Context, groupID string, r api.TranscriptRange) ([]byte, error) {
	n, err := s.node()
	if err != nil {
		return nil, err
	}
	return n.Transcript(ctx, groupID, r)
}

// Subscribe implements the UI backend; subscriptions survive restarts.
func (s *Service) Subscribe() (<-chan Event, func()) { return s.events.subscribe() }

// HandleFrame forwards a peer frame to the running node.
func (s *Service) HandleFrame(ctx context.Context, frame []byte) ([]byte, error) {
	n, err := s.node()
	if err != nil {
		return nil, err
	}
	return n.HandleFrame(ctx, frame)
}

// ServeFrame answers a peer frame that came over another transport than
// the HTTP peer listener (libp2p), with the running node's
// [Node.ServeFrame]; 503 while the node is stopped.
func (s *Service) ServeFrame(ctx context.Context, src string, size int64, body io.Reader) (int, []byte) {
	n := s.Node()
	if n == nil {
		return http.StatusServiceUnavailable, []byte("node stopped")
	}
	code, resp, _ := n.ServeFrame(ctx, src, size, body)
	return code, resp
}

// Member reports whether signKey is the identity key of a member, or of an
// invitee, of a group on the running node: the peers its libp2p host
// relays for.
func (s *Service) Member(signKey [32]byte) bool {
	n := s.Node()
	return n != nil && n.Member(signKey)
}

// PeerGone tells the running node that the process of the member with
// identity key k is gone (see [Node.PeerGone]).
func (s *Service) PeerGone(k [32]byte) {
	if n := s.Node(); n != nil {
		n.PeerGone(k)
	}
}

// PeerHandler serves the peer listener for whichever node runs.
func (s *Service) PeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.Node()
		if n == nil {
			http.Error(w, "node stopped", http.StatusServiceUnavailable)
			return
		}
		n.PeerHandler().ServeHTTP(w, r)
	})
}

// Post implements the UI backend.
func (s *Service) Post(ctx context.Context, groupID string, c content.Content, wait time.Duration) (Message, error) {
	n, err := s.node()
	if err != nil {
		return Message{}, err
	}
	return n.Post(ctx, groupID, c, wait)
}

// SendFile implements the UI backend.
func (s *Service) SendFile(ctx context.Context, groupID, name, mediaType string, size int64, r io.Reader, wait time.Duration) (Message, error) {
	n, err := s.node()
	if err != nil {
		return Message{}, err
	}
	return n.SendFile(ctx, groupID, name, mediaType, size, r, wait)
}

// OpenFile implements the UI backend.
func (s *Service) OpenFile(ctx context.Context, groupID, messageID string) (api.Attachment, io.ReadCloser, error) {
	n, err := s.node()
	if err != nil {
		return api.Attachment{}, nil, err
	}
	return n.OpenFile(ctx, groupID, messageID)
}
