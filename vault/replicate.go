package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// RecordNamespace is the state database namespace of replication records
// (state.DB.PutRecord), keyed by record id.
const RecordNamespace = "replication"

// ReplicateOptions tune Replicate.
type ReplicateOptions struct {
	// DB, when set, keeps a copy of the record (the host's own history, and
	// what RecoverReplications resumes).
	DB *state.DB
	// Workers is how many packs are copied at once (default 4); each is
	// held in memory while it is checked and stored.
	Workers int
	// Host recorded in the record; default: the host name.
	Host string
	// RecordID continues the record with this id instead of creating one
	// (RecoverReplications uses it).
	RecordID string
	// Progress, when set, is called from one goroutine every
	// ProgressInterval (default 200ms) and once at the end.
	Progress         func(ReplicateProgress)
	ProgressInterval time.Duration
}

// ReplicateProgress is a snapshot of a running replication.
type ReplicateProgress struct {
	// PacksTotal and BytesTotal count the packs the destination lacks and
	// their size, ChunksTotal the backup's chunks in them; they are zero
	// until the destination was listed.
	PacksTotal, PacksDone   int64
	ChunksTotal, ChunksDone int64
	BytesTotal, BytesDone   int64
}

// Replicate copies backup backupID from src to dst, under the rules:
//
//   - only an available backup replicates (ErrNotAvailable);
//   - a backup replicates to at most one account besides the one it was
//     made in (ErrSecondAccount): the first replication to another account
//     fixes it;
//   - a replica may go back to the account it was made in, which is also
//     the only way into a vault of kind backup (ErrDestination);
//   - a destination that already has the backup available is a skip.
//
// It copies the packs of the backup that dst lacks in parallel, checking
// each pack's SHA-256 and every chunk in it against the pack's trailer on
// arrival, then the tree, then writes the manifest with replicated_from:
// the replica exists once its manifest does. The tree names the same
// packs in both vaults, so it is copied as it is. Progress is
// kept in a Replication record in src (replications/<backup>/<id>.json)
// and in opts.DB, moving waiting_replicate → replicating → success | fail,
// or straight to skip.
//
// A refused replication returns an error and writes no record. Once a
// record exists, Replicate returns it; a failed replication returns the
// record (status fail) and the error.
func Replicate(ctx context.Context, src *Vault, backupID string, dst *Vault, opts ReplicateOptions) (*Replication, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Host == "" {
		opts.Host = hostname()
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 200 * time.Millisecond
	}
	m, err := src.Backup(ctx, backupID)
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	history, err := replicationHistory(ctx, src, backupID, opts.DB)
	if err != nil {
		return nil, fmt.Errorf("replicate backup %s: %w", backupID, err)
	}
	if err := CheckRules(m, Side{src.ID(), src.Name(), src.Kind(), src.Account()}, Side{dst.ID(), dst.Name(), dst.Kind(), dst.Account()}, history, opts.RecordID); err != nil {
		return nil, err
	}

	now := time.Now().UTC()
	rec := &Replication{
		ID: opts.RecordID, BackupID: backupID,
		SourceVault: src.Name(), SourceVaultID: src.ID(), SourceAccount: src.Account(),
		DestinationVault: dst.Name(), DestinationVaultID: dst.ID(), DestinationAccount: dst.Account(),
		Status: ReplWaiting, Host: opts.Host, Created: now, Updated: now,
	}
	if rec.ID == "" {
		rec.ID = "r" + newID(now)
	} else if old := findRecord(history, rec.ID); old != nil {
		rec.Created = old.Created
	}

	if have, err := dst.Backup(ctx, backupID); err == nil && have.Status == StatusAvailable {
		rec.Status, rec.Started, rec.Ended = ReplSkip, now, now
		if err := saveRecord(ctx, src, rec, opts.DB); err != nil {
			return rec, fmt.Errorf("replicate backup %s: %w", backupID, err)
		}
		return rec, nil
	} else if err != nil && !errors.Is(err, ErrNoBackup) {
		return nil, fmt.Errorf("replicate backup %s: destination: %w", backupID, err)
	}

	if err := saveRecord(ctx, src, rec, opts.DB); err != nil {
		return nil, fmt.Errorf("replicate backup %s: %w", backupID, err)
	}
	r := &replicator{src: src, dst: dst, m: m, rec: rec, opts: opts}
	if err := r.run(ctx); err != nil {
		rec.Status, rec.Error = ReplFail, err.Error()
		rec.Ended = time.Now().UTC()
		dctx, cancel := detach(ctx)
		defer cancel()
		if serr := saveRecord(dctx, src, rec, opts.DB); serr != nil {
			src.log.Warn("record failed replication", slog.String("record", rec.ID), slog.Any("err", serr))
		}
		return rec, fmt.Errorf("replicate backup %s from vault %s to vault %s: %w", backupID, src.Name(), dst.Name(), err)
	}
	rec.Status, rec.Error = ReplSuccess, ""
	rec.Ended = time.Now().UTC()
	if err := saveRecord(ctx, src, rec, opts.DB); err != nil {
		return rec, fmt.Errorf("replicate backup %s: the replica is complete but: %w", backupID, err)
	}
	return rec, nil
}

// Side describes one vault of a replication for CheckRules.
type Side struct {
	ID      string
	Name    string
	Kind    string
	Account string
}

// CheckRules applies the replication rules (see Replicate) to backup m
// going from src to dst, given the backup's replication history. The
// record resuming (if any) is not counted against itself.
func CheckRules(m *Manifest, src, dst Side, history []*Replication, resuming string) error {
	if m.Status != StatusAvailable {
		return fmt.Errorf("replicate backup %s: %w: its status is %s in vault %s; only available backups replicate", m.ID, ErrNotAvailable, m.Status, src.Name)
	}
	if src.ID == dst.ID {
		return fmt.Errorf("replicate backup %s: %w: vault %s is the backup's own vault", m.ID, ErrDestination, dst.Name)
	}
	origin := m.Account
	if dst.Account == origin {
		return nil // home, or another vault of the same account
	}
	if dst.Kind != KindReplication {
		return fmt.Errorf("replicate backup %s: %w: vault %s has kind %q and account %q; a vault of kind backup takes only replicas coming back to the account they were made in (%q)",
			m.ID, ErrDestination, dst.Name, dst.Kind, dst.Account, origin)
	}
	type use struct{ account, where string }
	var uses []use
	if m.IsReplica() && src.Account != origin {
		uses = append(uses, use{src.Account, "its replica in vault " + src.Name})
	}
	for _, r := range history {
		if r.ID == resuming || r.DestinationAccount == origin {
			continue
		}
		if r.Status == ReplSuccess || r.Active() {
			uses = append(uses, use{r.DestinationAccount, fmt.Sprintf("replication %s to vault %s (%s)", r.ID, r.DestinationVault, r.Status)})
		}
	}
	for _, u := range uses {
		if u.account != dst.Account {
			return fmt.Errorf("replicate backup %s: %w: it went to account %q (%s); a backup replicates to at most one account, so account %q (vault %s) is refused",
				m.ID, ErrSecondAccount, u.account, u.where, dst.Account, dst.Name)
		}
	}
	return nil
}

func findRecord(rs []*Replication, id string) *Replication {
	for _, r := range rs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// replicationHistory gathers the records of a backup's replications from
// the source vault and the state database (newest version of each).
func replicationHistory(ctx context.Context, src *Vault, backupID string, db *state.DB) ([]*Replication, error) {
	rs, err := src.Replications(ctx, backupID)
	if err != nil {
		return nil, err
	}
	if db != nil {
		more, err := DBReplications(db)
		if err != nil {
			return nil, err
		}
		for _, r := range more {
			if r.BackupID == backupID {
				rs = append(rs, r)
			}
		}
	}
	return MergeRecords(rs), nil
}

// MergeRecords keeps the most recently updated version of each record and
// sorts them by creation time.
func MergeRecords(rs []*Replication) []*Replication {
	byID := map[string]*Replication{}
	for _, r := range rs {
		if old, ok := byID[r.ID]; !ok || r.Updated.After(old.Updated) {
			byID[r.ID] = r
		}
	}
	out := make([]*Replication, 0, len(byID))
	for _, r := range byID {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Replication) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// saveRecord writes rec to the source vault and the database.
func saveRecord(ctx context.Context, src *Vault, rec *Replication, db *state.DB) error {
	rec.Updated = time.Now().UTC()
	if db != nil {
		if err := db.PutRecord(RecordNamespace, rec.ID, rec); err != nil {
			return fmt.Errorf("save replication record %s: %w", rec.ID, err)
		}
	}
	if err := putDoc(ctx, src.store, recordKey(rec.BackupID, rec.ID), encodeJSON(rec)); err != nil {
		return fmt.Errorf("save replication record %s in vault %s: %w", rec.ID, src.Name(), err)
	}
	return nil
}

// Replications returns the replication records kept in the vault for
// backupID, or for every backup when backupID is "". Malformed records are
// skipped with a warning.
func (v *Vault) Replications(ctx context.Context, backupID string) ([]*Replication, error) {
	prefix := replicationsDir
	if backupID != "" {
		if !ValidID(backupID) {
			return nil, fmt.Errorf("replications: %q is not a backup id", backupID)
		}
		prefix += backupID + "/"
	}
	var keys []string
	err := v.store.List(ctx, prefix, func(oi remote.ObjectInfo) error {
		if oi.SkipReason == "" && strings.HasSuffix(oi.Key, recordSuffix) {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list replication records of vault %s: %w", v.name, err)
	}
	var out []*Replication
	for _, k := range keys {
		data, err := getDoc(ctx, v.store, k)
		if errors.Is(err, remote.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read replication record: %w", err)
		}
		r, err := DecodeRecord(data)
		if err != nil {
			v.log.Warn("skip malformed replication record", slog.String("vault", v.name), slog.String("key", k), slog.Any("err", err))
			continue
		}
		out = append(out, r)
	}
	return MergeRecords(out), nil
}

// DBReplications returns the replication records of the state database.
func DBReplications(db *state.DB) ([]*Replication, error) {
	if db == nil {
		return nil, nil // no database: the vaults' records are all there is
	}
	var out []*Replication
	err := db.IterateRecords(RecordNamespace, "", func(_ string, raw []byte) error {
		var r Replication
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("replication record: %w", err)
		}
		out = append(out, &r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return MergeRecords(out), nil
}

// OpenFunc opens a configured vault by name (for RecoverReplications).
type OpenFunc func(ctx context.Context, name string) (*Vault, error)

// RecoverReplications finishes the replications this host left
// waiting_replicate or replicating (the process died): each is run again
// under its record id, which copies only what the destination still
// lacks, or marked fail when that is impossible (a vault cannot be opened,
// the backup is gone). It returns the records as they ended. The daemon
// calls it at start.
func RecoverReplications(ctx context.Context, db *state.DB, open OpenFunc, opts ReplicateOptions) ([]*Replication, error) {
	recs, err := DBReplications(db)
	if err != nil {
		return nil, fmt.Errorf("recover replications: %w", err)
	}
	host := opts.Host
	if host == "" {
		host = hostname()
	}
	var out []*Replication
	for _, rec := range recs {
		if !rec.Active() || rec.Host != host {
			continue
		}
		out = append(out, recoverOne(ctx, db, open, rec, opts))
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

func recoverOne(ctx context.Context, db *state.DB, open OpenFunc, rec *Replication, opts ReplicateOptions) *Replication {
	fail := func(src *Vault, err error) *Replication {
		rec.Status = ReplFail
		rec.Error = "interrupted, and could not be resumed: " + err.Error()
		rec.Ended = time.Now().UTC()
		rec.Updated = rec.Ended
		if perr := db.PutRecord(RecordNamespace, rec.ID, rec); perr != nil {
			slog.Default().Warn("record failed replication", slog.String("record", rec.ID), slog.Any("err", perr))
		}
		if src != nil {
			dctx, cancel := detach(ctx)
			defer cancel()
			_ = putDoc(dctx, src.store, recordKey(rec.BackupID, rec.ID), encodeJSON(rec))
		}
		return rec
	}
	src, err := open(ctx, rec.SourceVault)
	if err != nil {
		return fail(nil, err)
	}
	if src.ID() != rec.SourceVaultID {
		return fail(nil, fmt.Errorf("vault %s now has id %s, not %s", rec.SourceVault, src.ID(), rec.SourceVaultID))
	}
	dst, err := open(ctx, rec.DestinationVault)
	if err != nil {
		return fail(src, err)
	}
	if dst.ID() != rec.DestinationVaultID {
		return fail(src, fmt.Errorf("vault %s now has id %s, not %s", rec.DestinationVault, dst.ID(), rec.DestinationVaultID))
	}
	o := opts
	o.DB, o.RecordID = db, rec.ID
	got, err := Replicate(ctx, src, rec.BackupID, dst, o)
	if got == nil || got.Active() {
		if err == nil {
			err = errors.New("replication did not end")
		}
		return fail(src, err)
	}
	return got
}

// replicator runs one replication's copy.
type replicator struct {
	src, dst *Vault
	m        *Manifest
	rec      *Replication
	opts     ReplicateOptions

	packsTotal, packsDone   atomic.Int64
	chunksTotal, chunksDone atomic.Int64
	bytesTotal, bytesDone   atomic.Int64
	copiedChunks            atomic.Int64 // every chunk of the packs copied
}

func (r *replicator) run(ctx context.Context) error {
	sess, err := r.dst.beginWriter(ctx, markerKindRepl, r.rec.ID)
	if err != nil {
		return err
	}
	defer sess.end(ctx)
	r.rec.Status = ReplReplicating
	r.rec.Started = time.Now().UTC()
	if err := saveRecord(ctx, r.src, r.rec, r.opts.DB); err != nil {
		return err
	}
	stop := r.startProgress()
	defer stop()

	treeData, err := r.src.readObject(ctx, treeKey(r.m.Tree), r.m.Tree, maxTreeSize)
	if err != nil {
		return fmt.Errorf("source tree: %w", err)
	}
	tree, err := DecodeTree(treeData)
	if err != nil {
		return fmt.Errorf("source tree: %w", err)
	}
	missing, refs, err := r.missingPacks(ctx, tree)
	if err != nil {
		return err
	}
	if err := r.copyPacks(ctx, missing, refs); err != nil {
		return err
	}
	if _, err := r.dst.store.Stat(ctx, treeKey(r.m.Tree)); errors.Is(err, remote.ErrNotExist) {
		if err := putBytes(ctx, r.dst.store, treeKey(r.m.Tree), treeData, r.m.Tree, time.Now()); err != nil {
			return fmt.Errorf("copy tree: %w", err)
		}
		r.rec.Bytes += int64(len(treeData))
	} else if err != nil {
		return fmt.Errorf("copy tree: %w", err)
	}
	replica := *r.m
	replica.Status = StatusAvailable
	replica.ReplicatedFrom = &ReplicatedFrom{
		VaultID: r.src.ID(), Vault: r.src.Name(), Account: r.src.Account(),
		BackupID: r.m.ID, Replicated: time.Now().UTC(),
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.dst.putManifest(ctx, &replica)
}

// missingPacks returns the packs the backup's tree uses that dst lacks
// (with their size in src), and the tree's chunks by pack.
func (r *replicator) missingPacks(ctx context.Context, tree *Tree) ([]packInfo, map[string][]Chunk, error) {
	refs := chunksByPack(tree)
	have := map[string]bool{}
	if err := r.dst.listPacks(ctx, func(sum string, _ remote.ObjectInfo) error {
		have[sum] = true
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var missing []packInfo
	err := r.src.listPacks(ctx, func(sum string, oi remote.ObjectInfo) error {
		if _, used := refs[sum]; used && !have[sum] {
			missing = append(missing, packInfo{sum: sum, size: oi.Size})
			r.packsTotal.Add(1)
			r.chunksTotal.Add(int64(len(refs[sum])))
			r.bytesTotal.Add(oi.Size)
		}
		have[sum] = true // now: in dst or in src
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for sum := range refs {
		if !have[sum] {
			return nil, nil, fmt.Errorf("source vault %s: %s: %w (the backup's chunks in it are lost; run ferry backup verify)", r.src.Name(), PackKey(sum), remote.ErrNotExist)
		}
	}
	return missing, refs, nil
}

// copyPacks copies packs from src to dst with the configured workers.
func (r *replicator) copyPacks(ctx context.Context, packs []packInfo, refs map[string][]Chunk) error {
	err := forEach(ctx, packs, r.opts.Workers, func(ctx context.Context, p packInfo) error {
		return r.copyPack(ctx, p, refs[p.sum])
	})
	r.rec.Packs += r.packsDone.Load()
	r.rec.Chunks += r.copiedChunks.Load()
	r.rec.Bytes += r.bytesDone.Load()
	return err
}

// packBufs holds buffers for whole packs (copyPack).
var packBufs sync.Pool

// getPackBuf returns a buffer of at least size bytes.
func getPackBuf(size int64) *[]byte {
	if pb, ok := packBufs.Get().(*[]byte); ok && int64(cap(*pb)) >= size {
		return pb
	}
	b := make([]byte, max(size, DefaultPackSize))
	return &b
}

func putPackBuf(pb *[]byte) { packBufs.Put(pb) }

// copyPack reads a pack whole from src, checks it — its trailer is sound,
// every chunk in it hashes to what the trailer says, and the tree's chunks
// are where the tree says — and stores it in dst with its SHA-256, which
// dst checks the bytes against (a pack damaged as a whole fails there and
// is reported as the source's).
func (r *replicator) copyPack(ctx context.Context, p packInfo, refs []Chunk) error {
	key := PackKey(p.sum)
	if p.size <= 0 || p.size > MaxPackSize {
		return fmt.Errorf("source %s: %w: listed with %d bytes (valid: 1 to %d)", key, ErrFormat, p.size, int64(MaxPackSize))
	}
	// The listed size, read at once into a buffer used again for the next
	// pack: growing a fresh buffer for every pack cost more than the
	// copy. The name check below catches a pack that is not that size.
	pb := getPackBuf(p.size)
	defer putPackBuf(pb)
	data, err := readRangeInto(ctx, r.src.store, key, 0, (*pb)[:p.size])
	if err != nil {
		return fmt.Errorf("read source pack: %w", err)
	}
	// The pack's own SHA-256 is checked by the destination's Put, which
	// refuses content that does not hash to the name (remote.Store); the
	// chunks and the trailer are checked here.
	entries, err := DecodePack(data)
	if err != nil {
		return fmt.Errorf("source %s: %w", key, err)
	}
	at := make(map[string]PackEntry, len(entries))
	for _, e := range entries {
		at[e.SHA256] = e
	}
	for _, c := range refs {
		if e, ok := at[c.SHA256]; !ok || e.Offset != c.Offset || e.Size != c.Size {
			return fmt.Errorf("source %s: %w: the tree has chunk %s at offset %d (%d bytes); the pack's trailer does not", key, ErrFormat, c.SHA256, c.Offset, c.Size)
		}
	}
	if err := putBytes(ctx, r.dst.store, key, data, p.sum, time.Now()); err != nil {
		if errors.Is(err, remote.ErrChecksum) {
			if got := sumHex(data); got != p.sum {
				return fmt.Errorf("source %s: %w: content hashes to %s", key, remote.ErrChecksum, got)
			}
		}
		return fmt.Errorf("copy pack: %w", err)
	}
	last := entries[len(entries)-1]
	r.dst.cache.put(p.sum, data[last.Offset+last.Size:])
	r.packsDone.Add(1)
	r.chunksDone.Add(int64(len(refs)))
	r.copiedChunks.Add(int64(len(entries)))
	r.bytesDone.Add(int64(len(data)))
	return nil
}

func (r *replicator) startProgress() func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	snap := func() ReplicateProgress {
		return ReplicateProgress{PacksTotal: r.packsTotal.Load(), PacksDone: r.packsDone.Load(),
			ChunksTotal: r.chunksTotal.Load(), ChunksDone: r.chunksDone.Load(),
			BytesTotal: r.bytesTotal.Load(), BytesDone: r.bytesDone.Load()}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.opts.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				r.opts.Progress(snap())
				return
			case <-t.C:
				r.opts.Progress(snap())
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// Interrupted returns the id of a replication of backupID from src to dst
// that this host's database holds as waiting_replicate or replicating, or
// "" when there is none. Whoever holds the database holds it alone, so
// such a record belongs to a process that died; passing its id as
// ReplicateOptions.RecordID resumes it instead of leaving it behind.
func Interrupted(db *state.DB, backupID string, src, dst *Vault) (string, error) {
	recs, err := DBReplications(db)
	if err != nil {
		return "", err
	}
	host := hostname()
	for _, r := range recs {
		if r.Active() && r.Host == host && r.BackupID == backupID &&
			r.SourceVaultID == src.ID() && r.DestinationVaultID == dst.ID() {
			return r.ID, nil
		}
	}
	return "", nil
}
