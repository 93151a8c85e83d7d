package p2p

import "github.com/libp2p/go-libp2p/core/event"

// OnAddrsChanged sets a function called with the host's new URL whenever
// the one [Host.URL] returns changes: libp2p found other addresses of its
// own (the machine moved to another network, a port mapping appeared), or
// a slot on a relay was gained or lost. It is called on one goroutine of
// the host's, never twice in a row with the same URL, and once soon after
// it is set with the current URL, so that a change between a read of URL
// and this call is not missed. f should not block: the next change waits
// for it.
func (p *Host) OnAddrsChanged(f func(url string)) {
	p.mu.Lock()
	p.onAddrs = f
	p.mu.Unlock()
	p.pokeAddrs()
}

// pokeAddrs asks watchAddrs to look at the URL again; pokes while it is
// busy fold into one.
func (p *Host) pokeAddrs() {
	select {
	case p.addrsPoke <- struct{}{}:
	default:
	}
}

// watchAddrs reports the host's URL to the OnAddrsChanged function each
// time libp2p's addresses change or pokeAddrs asks, unless it is the URL
// reported last. One goroutine does it all, so that reports come in the
// order the changes happened: two reporters could race and leave the
// older URL reported last.
func (p *Host) watchAddrs(sub event.Subscription) {
	defer sub.Close()
	var last string
	for {
		select {
		case <-p.ctx.Done():
			return
		case _, ok := <-sub.Out():
			if !ok {
				return
			}
		case <-p.addrsPoke:
		}
		p.mu.Lock()
		f := p.onAddrs
		p.mu.Unlock()
		if f == nil || p.ctx.Err() != nil {
			continue
		}
		// URL takes p.mu itself, and f must not run under it.
		if url := p.URL(); url != last {
			last = url
			f(url)
		}
	}
}
