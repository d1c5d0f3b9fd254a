package syncer

import (
	"context"
	"sync"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// defaultUnreachableAfter is Engine.UnreachableAfter's default.
const defaultUnreachableAfter = 60 * time.Second

// side is one of a plan's two stores.
type side int

const (
	sideSource side = iota
	sideDest
)

func (s side) String() string {
	if s == sideDest {
		return "destination"
	}
	return "source"
}

// breaker ends a job whose source or destination stopped answering, instead
// of letting every remaining file fail its attempts one after the other. It
// trips when one side has failed only at the connection level
// (remote.IsUnreachable) for window: a failure comes window or more after
// the first of a run of such failures, with no success in between. Other
// errors (not found, permission, checksum, a full disk) are the file's own
// and neither count nor reset.
//
// All workers of a job share one breaker; its methods may be called from
// any goroutine. Tripping calls stop once, which cancels the workers'
// context so transfers in flight and retry waits end at once, and closes
// tripped, which the slicer watches to stop handing out files.
type breaker struct {
	window  time.Duration
	stop    context.CancelFunc
	desc    [2]string // how the plan names each side, for the cause
	tripped chan struct{}

	mu    sync.Mutex
	since [2]time.Time // first failure of the current run, per side; zero: none
	fails [2]int
	side  side
	cause error // set once, when tripped
}

func newBreaker(window time.Duration, p *Plan, stop context.CancelFunc) *breaker {
	if window <= 0 {
		window = defaultUnreachableAfter
	}
	return &breaker{window: window, stop: stop, desc: [2]string{p.SourceDesc, p.DestDesc},
		tripped: make(chan struct{})}
}

// attempt records the outcome of one attempt at a file: a success shows
// both sides answer; a connection-level failure counts against the
// destination when the error is the destination's (destErr), else against
// the source.
func (b *breaker) attempt(err error) {
	switch {
	case err == nil:
		b.mu.Lock()
		b.since, b.fails = [2]time.Time{}, [2]int{}
		b.mu.Unlock()
	case remote.IsUnreachable(err):
		s := sideSource
		if isDestErr(err) {
			s = sideDest
		}
		b.failed(s, err)
	}
}

func (b *breaker) failed(s side, err error) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cause != nil {
		return
	}
	if b.since[s].IsZero() {
		b.since[s] = now
	}
	b.fails[s]++
	down := now.Sub(b.since[s])
	if down < b.window {
		return
	}
	b.side = s
	b.cause = failJob("%s %s unreachable for %s (%d connection failures, no success): "+
		"the job stopped starting files and the next run copies the rest; last error: %v",
		s, b.desc[s], down.Round(time.Second), b.fails[s], err)
	close(b.tripped)
	b.stop()
}

// state returns, once the breaker tripped, the side that was unreachable
// and the job-level failure; before, cause is nil.
func (b *breaker) state() (s side, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.side, b.cause
}

// failure is the job-level failure once the breaker tripped, else nil.
func (b *breaker) failure() error {
	_, cause := b.state()
	return cause
}
