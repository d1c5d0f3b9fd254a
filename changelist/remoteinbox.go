package changelist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// maxRemoteCandidates bounds how many waiting lists one Next looks at: the
// oldest of the first this many in key order is claimed.
const maxRemoteCandidates = 10000

// remoteInbox is an inbox prefix on a Store:
//
//	PREFIX/NAME.csv                    dropped, waiting (claimed: a record in the state database)
//	PREFIX/done/NAME.csv               processed
//	PREFIX/rejected/NAME.csv           refused, beside
//	PREFIX/rejected/NAME.csv.error     why
type remoteInbox struct {
	store  remote.Store
	prefix string
	desc   string
	db     *state.DB
	plan   string
	now    func() time.Time
	// instance tells this inbox's claims from those of an earlier process.
	instance string
}

// claimRecord is a remote claim, stored under PLAN/KEY.
type claimRecord struct {
	ETag      string    `json:"etag"`
	Instance  string    `json:"instance"`
	ClaimedAt time.Time `json:"claimed_at"`
}

// NewRemoteInbox opens the inbox under prefix ("" or ending in "/") on
// store; desc names it in messages (e.g. "source:/changelist"). Lists are
// the objects directly under prefix named *.csv or *.csv.gz; a list is
// claimed by recording its key and ETag in the state database, which makes
// the claim atomic. Claims recorded by an earlier process are taken over
// by Next (Recovered). Finished lists are copied to done/ or rejected/
// under prefix and then deleted.
func NewRemoteInbox(store remote.Store, prefix, desc string, opts InboxOptions) (*Inbox, error) {
	if err := remote.ValidatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("changelist inbox %s: %w", desc, err)
	}
	var id [8]byte
	rand.Read(id[:])
	b := &remoteInbox{store: store, prefix: prefix, desc: desc, db: opts.DB, plan: opts.Plan, instance: hex.EncodeToString(id[:])}
	in, err := newInbox(b, opts)
	if err != nil {
		return nil, err
	}
	b.now = in.opts.now
	return in, nil
}

func (b *remoteInbox) String() string { return b.desc }

func (b *remoteInbox) claimNext(ctx context.Context) (*item, error) {
	var cands []remote.ObjectInfo
	add := func(oi remote.ObjectInfo) error {
		rest := strings.TrimPrefix(oi.Key, b.prefix)
		if oi.SkipReason == "" && !strings.Contains(rest, "/") && isListName(rest) {
			cands = append(cands, oi)
		}
		if len(cands) >= maxRemoteCandidates {
			return errEnough
		}
		return nil
	}
	var err error
	if dl, ok := b.store.(remote.DirLister); ok {
		err = dl.ListDir(ctx, b.prefix, func(e remote.DirEntry) error {
			if e.Dir {
				return nil
			}
			return add(e.Info)
		})
	} else {
		err = b.store.List(ctx, b.prefix, add)
	}
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("list: %w", err)
	}
	slices.SortFunc(cands, func(x, y remote.ObjectInfo) int {
		if c := x.ModTime.Compare(y.ModTime); c != 0 {
			return c
		}
		return strings.Compare(x.Key, y.Key)
	})
	for _, oi := range cands {
		it, err := b.claim(oi)
		if err != nil || it != nil {
			return it, err
		}
	}
	return nil, nil
}

var errEnough = errors.New("enough candidates")

// claim records the claim of oi, or returns nil when this inbox holds it
// already.
func (b *remoteInbox) claim(oi remote.ObjectInfo) (*item, error) {
	ck := b.plan + "/" + oi.Key
	rec := claimRecord{ETag: oi.ETag, Instance: b.instance, ClaimedAt: b.now().UTC()}
	it := &item{name: path.Base(oi.Key), key: oi.Key, etag: oi.ETag}
	for range 3 {
		created, err := b.db.CreateRecord(claimNamespace, ck, rec)
		if err != nil {
			return nil, err
		}
		if created {
			return it, nil
		}
		var prev claimRecord
		found, err := b.db.GetRecord(claimNamespace, ck, &prev)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		if prev.Instance == b.instance {
			return nil, nil // ours, being processed
		}
		// An earlier process claimed it and did not finish.
		if err := b.db.PutRecord(claimNamespace, ck, rec); err != nil {
			return nil, err
		}
		it.recovered = prev.ETag == oi.ETag
		return it, nil
	}
	return nil, fmt.Errorf("claim record %s keeps changing", ck)
}

func (b *remoteInbox) open(ctx context.Context, it *item) (io.ReadCloser, error) {
	return b.store.Open(ctx, it.key, 0, -1)
}

func (b *remoteInbox) finish(ctx context.Context, it *item, sub, reason string) (string, error) {
	dir := b.prefix + sub + "/"
	var target string
	for name := range altNames(it.name, b.now()) {
		free, err := b.free(ctx, dir+name)
		if err == nil && free && reason != "" {
			free, err = b.free(ctx, dir+name+errorExt)
		}
		if err != nil {
			return "", err
		}
		if free {
			target = dir + name
			break
		}
	}
	if target == "" {
		return "", fmt.Errorf("no free name for %s under %s", it.name, dir)
	}
	if reason != "" {
		if _, err := b.store.Put(ctx, target+errorExt, strings.NewReader(reason), int64(len(reason)), remote.PutMeta{}); err != nil {
			return "", fmt.Errorf("write %s: %w", target+errorExt, err)
		}
	}
	if err := b.copy(ctx, it.key, target); err != nil {
		return "", err
	}
	if err := b.store.Delete(ctx, it.key); err != nil {
		return "", fmt.Errorf("delete %s: %w", it.key, err)
	}
	if err := b.db.DeleteRecord(claimNamespace, b.plan+"/"+it.key); err != nil {
		return "", err
	}
	return target, nil
}

func (b *remoteInbox) free(ctx context.Context, key string) (bool, error) {
	_, err := b.store.Stat(ctx, key)
	switch {
	case errors.Is(err, remote.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("stat %s: %w", key, err)
	}
	return false, nil
}

// copy copies src to dst, server-side when the store can.
func (b *remoteInbox) copy(ctx context.Context, src, dst string) error {
	if c, ok := b.store.(remote.Copier); ok {
		if _, err := c.Copy(ctx, src, dst); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		return nil
	}
	oi, err := b.store.Stat(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	rc, err := b.store.Open(ctx, src, 0, -1)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer rc.Close()
	if _, err := b.store.Put(ctx, dst, rc, oi.Size, remote.PutMeta{ModTime: oi.ModTime, SHA256: oi.SHA256}); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func (b *remoteInbox) release(_ context.Context, it *item) error {
	return b.db.DeleteRecord(claimNamespace, b.plan+"/"+it.key)
}
