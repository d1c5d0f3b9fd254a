package changelist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/state"
)

// Record namespaces in the state database (see state/doc.go).
const (
	// LedgerNamespace holds one LedgerEntry per list content processed,
	// under PLAN "/" SHA256.
	LedgerNamespace = "changelist"
	// claimNamespace holds the claims of remote inboxes, under
	// PLAN "/" KEY.
	claimNamespace = "claim"
)

// DefaultMinAge is how long a file in a local inbox must have been left
// alone before it is claimed.
const DefaultMinAge = time.Second

// Sub-directories (local) or sub-prefixes (remote) of an inbox.
const (
	DoneDir       = "done"
	RejectedDir   = "rejected"
	processingExt = ".processing"
	errorExt      = ".error"
)

// ErrNoList is returned by Inbox.Next when no list is waiting.
var ErrNoList = errors.New("no changelist waiting")

// ErrDuplicate is wrapped by every *DuplicateError.
var ErrDuplicate = errors.New("duplicate changelist")

// DuplicateError says that a list's content was processed (or is being
// processed) already. Reject the claim with it.
type DuplicateError struct {
	Name     string      // the list refused
	Previous LedgerEntry // the earlier list with the same content
}

func (e *DuplicateError) Error() string {
	p := e.Previous
	sum := p.SHA256
	if len(sum) > 16 {
		sum = sum[:16] + "…"
	}
	if p.Status == StatusDone && p.DoneAt != nil {
		return fmt.Sprintf("changelist %s is a duplicate: the same content (SHA-256 %s) was processed as %s at %s",
			e.Name, sum, p.Name, p.DoneAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("changelist %s is a duplicate: the same content (SHA-256 %s) is being processed as %s since %s",
		e.Name, sum, p.Name, p.ClaimedAt.UTC().Format(time.RFC3339))
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Ledger statuses.
const (
	StatusProcessing = "processing"
	StatusDone       = "done"
)

// LedgerEntry is what the ledger remembers of a list's content.
type LedgerEntry struct {
	Plan      string     `json:"plan"`
	SHA256    string     `json:"sha256"`
	Name      string     `json:"name"`  // the list's name when it was processed
	Inbox     string     `json:"inbox"` // where it was dropped
	Status    string     `json:"status"`
	ClaimedAt time.Time  `json:"claimed_at"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
	Rows      int        `json:"rows"`
}

// LookupLedger returns the ledger entry of content sum for plan.
func LookupLedger(db *state.DB, plan, sum string) (LedgerEntry, bool, error) {
	var e LedgerEntry
	found, err := db.GetRecord(LedgerNamespace, plan+"/"+sum, &e)
	return e, found, err
}

// InboxOptions configure an inbox. Plan and DB are required.
type InboxOptions struct {
	// Plan is the plan the lists are for; the ledger is per plan.
	Plan string
	// DB holds the ledger and, for a remote inbox, the claims.
	DB *state.DB
	// Parse limits the lists (see Options).
	Parse Options
	// MinAge (local inboxes): a file modified less than this long ago is
	// left alone, as it may still be being written. Default DefaultMinAge.
	MinAge time.Duration
	// Logger receives the inbox's messages; nil discards them.
	Logger *slog.Logger

	now func() time.Time // for tests
}

// Inbox hands out the lists dropped into one place, each to exactly one
// claim. The daemon's loop is:
//
//	c, err := inbox.Next(ctx)      // ErrNoList: nothing waiting
//	list, err := c.Parse(ctx)      // *RejectError, *DuplicateError: c.Reject(ctx, err.Error())
//	... run the job with list ...
//	c.Done(ctx)                    // or c.Reject(ctx, why), or c.Release(ctx) to retry later
//
// Claims left unfinished by a process that died are handed out again by
// the next process's Next, marked Recovered. One process at a time may use
// an inbox (the state database's lock sees to that for one state
// directory; two daemons with two state directories must not share one).
type Inbox struct {
	b    backend
	opts InboxOptions
	log  *slog.Logger
	mu   sync.Mutex // serializes Next
}

// backend is a local directory or a remote prefix.
type backend interface {
	String() string
	// claimNext claims the oldest waiting list; nil when there is none.
	claimNext(ctx context.Context) (*item, error)
	open(ctx context.Context, it *item) (io.ReadCloser, error)
	// finish moves the list to done/ (reason "") or rejected/ beside a
	// .error holding reason, and returns where it went.
	finish(ctx context.Context, it *item, dir, reason string) (string, error)
	// release puts the list back to be claimed again.
	release(ctx context.Context, it *item) error
}

// item is one claimed list, as its backend knows it.
type item struct {
	name      string // the list's name, e.g. "2026-11-23.csv"
	recovered bool
	path      string // local: the .processing file
	key, etag string // remote
}

func newInbox(b backend, opts InboxOptions) (*Inbox, error) {
	switch {
	case opts.Plan == "":
		return nil, fmt.Errorf("changelist inbox %s: no plan given", b)
	case opts.DB == nil:
		return nil, fmt.Errorf("changelist inbox %s: no state database given", b)
	}
	if opts.MinAge <= 0 {
		opts.MinAge = DefaultMinAge
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbox{b: b, opts: opts, log: log.With(slog.String("inbox", b.String()), slog.String("plan", opts.Plan))}, nil
}

// String names the inbox: its directory, or the description a remote inbox
// was given.
func (in *Inbox) String() string { return in.b.String() }

// Next claims the oldest list waiting, or returns ErrNoList. Lists claimed
// by an earlier process that did not finish them come first.
func (in *Inbox) Next(ctx context.Context) (*Claim, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it, err := in.b.claimNext(ctx)
	if err != nil {
		return nil, fmt.Errorf("changelist inbox %s: %w", in.b, err)
	}
	if it == nil {
		return nil, ErrNoList
	}
	in.log.Info("changelist claimed", slog.String("list", it.name), slog.Bool("recovered", it.recovered))
	return &Claim{in: in, it: it}, nil
}

// Claim is one list being processed. Finish it with exactly one of Done,
// Reject or Release.
type Claim struct {
	in       *Inbox
	it       *item
	ledger   string // ledger key this claim created or took over
	entry    LedgerEntry
	finished bool
}

// Name is the list's name as it was dropped (e.g. "2026-11-23.csv").
func (c *Claim) Name() string { return c.it.name }

// Origin names the list for a job record: "changelist NAME".
func (c *Claim) Origin() string { return "changelist " + c.it.name }

// Recovered reports whether an earlier process claimed the list and died
// before finishing it.
func (c *Claim) Recovered() bool { return c.it.recovered }

// Parse reads the list and enters its content in the ledger. It returns a
// *RejectError for a broken list and a *DuplicateError for content the
// ledger already holds (for this plan); the caller rejects the claim with
// either. A recovered claim may take over the ledger entry its earlier
// process made for the same list.
func (c *Claim) Parse(ctx context.Context) (*List, error) {
	rc, err := c.in.b.open(ctx, c.it)
	if err != nil {
		return nil, fmt.Errorf("open changelist %s in %s: %w", c.it.name, c.in.b, err)
	}
	l, err := Parse(rc, c.it.name, c.in.opts.Parse)
	rc.Close()
	if err != nil {
		return nil, err
	}
	if err := c.enterLedger(l); err != nil {
		return nil, err
	}
	return l, nil
}

func (c *Claim) enterLedger(l *List) error {
	db, plan := c.in.opts.DB, c.in.opts.Plan
	key := plan + "/" + l.SHA256
	if c.ledger == key {
		return nil // parsed twice
	}
	entry := LedgerEntry{
		Plan: plan, SHA256: l.SHA256, Name: c.it.name, Inbox: c.in.b.String(),
		Status: StatusProcessing, ClaimedAt: c.in.opts.now().UTC(), Rows: l.Rows,
	}
	for range 3 { // the entry may vanish between create and get; try again
		created, err := db.CreateRecord(LedgerNamespace, key, entry)
		if err != nil {
			return fmt.Errorf("changelist %s: ledger: %w", c.it.name, err)
		}
		if created {
			c.ledger, c.entry = key, entry
			return nil
		}
		var prev LedgerEntry
		found, err := db.GetRecord(LedgerNamespace, key, &prev)
		if err != nil {
			return fmt.Errorf("changelist %s: ledger: %w", c.it.name, err)
		}
		if !found {
			continue
		}
		if c.it.recovered && prev.Name == c.it.name {
			// Our own entry, from the process that claimed the list before.
			if err := db.PutRecord(LedgerNamespace, key, entry); err != nil {
				return fmt.Errorf("changelist %s: ledger: %w", c.it.name, err)
			}
			c.ledger, c.entry = key, entry
			return nil
		}
		return &DuplicateError{Name: c.it.name, Previous: prev}
	}
	return fmt.Errorf("changelist %s: ledger entry %s keeps changing", c.it.name, key)
}

// Done records the list as processed in the ledger and moves it to done/.
// It returns where the list went.
func (c *Claim) Done(ctx context.Context) (string, error) {
	if err := c.finishing(); err != nil {
		return "", err
	}
	if c.ledger != "" {
		t := c.in.opts.now().UTC()
		c.entry.Status, c.entry.DoneAt = StatusDone, &t
		if err := c.in.opts.DB.PutRecord(LedgerNamespace, c.ledger, c.entry); err != nil {
			return "", fmt.Errorf("changelist %s: ledger: %w", c.it.name, err)
		}
	}
	where, err := c.in.b.finish(ctx, c.it, DoneDir, "")
	if err != nil {
		return "", fmt.Errorf("changelist %s: move to %s: %w", c.it.name, DoneDir, err)
	}
	c.in.log.Info("changelist done", slog.String("list", c.it.name), slog.String("moved_to", where))
	return where, nil
}

// Reject moves the list to rejected/, beside NAME.error holding reason, and
// forgets its content in the ledger (unless the content belongs to another
// list, as for a duplicate), so the same list may be dropped again once the
// cause is fixed. It returns where the list went.
func (c *Claim) Reject(ctx context.Context, reason string) (string, error) {
	if err := c.finishing(); err != nil {
		return "", err
	}
	if err := c.forget(); err != nil {
		return "", err
	}
	reason = strings.TrimRight(reason, "\n") + "\n"
	where, err := c.in.b.finish(ctx, c.it, RejectedDir, reason)
	if err != nil {
		return "", fmt.Errorf("changelist %s: move to %s: %w", c.it.name, RejectedDir, err)
	}
	c.in.log.Warn("changelist rejected", slog.String("list", c.it.name), slog.String("moved_to", where),
		slog.String("reason", strings.TrimSpace(reason)))
	return where, nil
}

// Release gives the list back to the inbox, unprocessed, to be claimed
// again by a later Next (e.g. after the destination could not be reached).
func (c *Claim) Release(ctx context.Context) error {
	if err := c.finishing(); err != nil {
		return err
	}
	if err := c.forget(); err != nil {
		return err
	}
	if err := c.in.b.release(ctx, c.it); err != nil {
		return fmt.Errorf("changelist %s: release: %w", c.it.name, err)
	}
	c.in.log.Info("changelist released", slog.String("list", c.it.name))
	return nil
}

func (c *Claim) finishing() error {
	if c.finished {
		return fmt.Errorf("changelist %s: the claim was already finished", c.it.name)
	}
	c.finished = true
	return nil
}

func (c *Claim) forget() error {
	if c.ledger == "" {
		return nil
	}
	if err := c.in.opts.DB.DeleteRecord(LedgerNamespace, c.ledger); err != nil {
		return fmt.Errorf("changelist %s: ledger: %w", c.it.name, err)
	}
	c.ledger = ""
	return nil
}

// isListName reports whether name is a changelist by its name: *.csv or
// *.csv.gz (any case), not hidden.
func isListName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".csv") || strings.HasSuffix(n, ".csv.gz")
}

// splitExt splits a list name into base and extension (".csv", ".csv.gz").
func splitExt(name string) (string, string) {
	n := strings.ToLower(name)
	for _, ext := range []string{".csv.gz", ".csv"} {
		if strings.HasSuffix(n, ext) {
			return name[:len(name)-len(ext)], name[len(name)-len(ext):]
		}
	}
	return name, ""
}

// altNames yields the names a finished list may take in done/ or
// rejected/: its own, then with the time inserted, then with a counter.
func altNames(name string, now time.Time) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		if !yield(name) {
			return
		}
		base, ext := splitExt(name)
		stamp := base + "." + now.UTC().Format("20060102T150405Z")
		if !yield(stamp + ext) {
			return
		}
		for i := 2; i < 1000; i++ {
			if !yield(fmt.Sprintf("%s-%d%s", stamp, i, ext)) {
				return
			}
		}
	}
}
