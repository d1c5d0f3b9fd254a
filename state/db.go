package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrNotFound: the job, upload or record asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: CreateJob was given an ID that is already taken.
	ErrExists = errors.New("already exists")
	// ErrLocked: another process (or another DB in this process) has the
	// state directory open.
	ErrLocked = errors.New("state database is locked")
	// ErrInvalid: an argument cannot be stored (empty name, NUL byte, bad
	// status or list kind). The message names the argument.
	ErrInvalid = errors.New("invalid argument")
	// ErrClosed: the DB was used after Close.
	ErrClosed = errors.New("state database is closed")
	// ErrCorrupt: a stored value could not be decoded.
	ErrCorrupt = errCorrupt
)

// Options configure Open.
type Options struct {
	// Logger receives the database's own messages: badger's informational
	// chatter at debug level, its warnings and errors at warn and error.
	// Nil discards them.
	Logger *slog.Logger
	// InMemory keeps everything in memory and ignores dir. For tests.
	InMemory bool
}

// Sizing, chosen for a daemon that should stay small next to the data it
// moves. Badger v4's defaults are tuned for a database server: 64 MiB
// memtables (each an up-front ~75 MiB arena plus a 128 MiB mmapped
// write-ahead log), up to five of them, a 256 MiB block cache and value-log
// files mmapped at 2 GiB. Ferry's values are small (an index entry is ~70
// bytes), so, measured with BenchmarkIndex1M (one million entries written
// in batches of 5,000, iterated and looked up):
const (
	// memTableSize bounds one memtable (arena this plus 15%, WAL file
	// mmapped at twice this). 8 MiB holds ~50k index entries and one
	// PutFiles of 5,000 fits a single transaction (the largest is 15% of
	// this). Against 16 MiB it cut the benchmark's peak RSS from ~430 to
	// ~310 MiB at no measurable cost in write time.
	memTableSize = 8 << 20
	// numMemtables: one being written, up to two being flushed to L0. More
	// only helps write bursts far above what a sync produces.
	numMemtables = 3
	// valueThreshold: values up to this size live in the LSM tree itself;
	// only larger ones (a big record from PutRecord) go to the value log,
	// so nearly nothing needs value-log GC. It must stay well under the
	// largest batch (15% of memTableSize).
	valueThreshold = 64 << 10
	// valueLogFileSize: value-log files are mmapped at twice this size.
	// With the threshold above the value log holds almost nothing.
	valueLogFileSize = 64 << 20
	// blockCacheSize caches decompressed table blocks. A sync reads the
	// index in path order, so a small cache already catches nearly every
	// repeated block; random lookups over a large index miss whatever its
	// size, unless it holds the whole index.
	blockCacheSize = 16 << 20
	// Snappy (badger's default) compression: 67 bytes per index entry on
	// disk against 106 uncompressed; zstd gave 60 for 40% more CPU.
	compression = options.Snappy
	// numCompactors: badger's minimum for a working L0; the machine has
	// other work to do.
	numCompactors = 2
	// gcInterval between value-log garbage collections (on-disk DBs only).
	gcInterval = 10 * time.Minute
)

// DB is the state database. It is safe for concurrent use.
type DB struct {
	bdb    *badger.DB
	dir    string
	log    *slog.Logger
	lock   *dirLock
	closed atomic.Bool

	// gate lets DropPlanIndex run badger's DropPrefix, which makes
	// concurrent writes fail, without any writer seeing that: every write
	// holds gate for reading, a drop holds it for writing.
	gate sync.RWMutex

	// listSeq numbers job file-list records; listMu makes one append call's
	// records contiguous.
	listMu  sync.Mutex
	listSeq *badger.Sequence

	// jobMu serialises job ID assignment.
	jobMu sync.Mutex

	stopGC chan struct{}
	gcDone chan struct{}
}

// Open opens (creating if needed) the state database in dir. If another
// ferry process holds dir, the error wraps ErrLocked and says so.
func Open(dir string, opts Options) (*DB, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{dir: dir, log: logger}

	bo := badger.DefaultOptions(dir)
	if opts.InMemory {
		bo = badger.DefaultOptions("").WithInMemory(true)
		db.dir = ""
	} else {
		if dir == "" {
			return nil, fmt.Errorf("open state: %w: state directory is empty", ErrInvalid)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open state %s: %w", dir, err)
		}
		l, err := lockDir(dir)
		if err != nil {
			return nil, err
		}
		db.lock = l
	}
	bo = bo.
		WithLogger(badgerLogger{l: logger}).
		WithMemTableSize(memTableSize).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(valueLogFileSize).
		WithBlockCacheSize(blockCacheSize).
		WithNumCompactors(numCompactors).
		WithCompression(compression).
		WithMetricsEnabled(false).
		WithSyncWrites(false)

	bdb, err := badger.Open(bo)
	if err != nil {
		db.lock.release()
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	db.bdb = bdb
	if err := db.init(); err != nil {
		bdb.Close()
		db.lock.release()
		return nil, fmt.Errorf("open state %s: %w", dir, err)
	}
	if !opts.InMemory {
		db.stopGC = make(chan struct{})
		db.gcDone = make(chan struct{})
		go db.gcLoop()
	}
	return db, nil
}

// init checks the schema version and prepares the list sequence.
func (db *DB) init() error {
	err := db.bdb.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, schemaValue)
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if !bytes.Equal(v, schemaValue) {
				return fmt.Errorf("state schema version %v is not supported by this ferry (it reads version %d); "+
					"it was probably written by a newer ferry", v, schemaValue[0])
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	db.listSeq, err = db.bdb.GetSequence(keyListSeq, 10000)
	return err
}

// Close flushes and closes the database and releases the directory lock.
// Calling it again returns nil.
func (db *DB) Close() error {
	if !db.closed.CompareAndSwap(false, true) {
		return nil
	}
	if db.stopGC != nil {
		close(db.stopGC)
		<-db.gcDone
	}
	db.gate.Lock() // wait for reads and writes in flight
	defer db.gate.Unlock()
	err := db.listSeq.Release()
	if cerr := db.bdb.Close(); err == nil {
		err = cerr
	}
	db.lock.release()
	if err != nil {
		return fmt.Errorf("close state %s: %w", db.dir, err)
	}
	return nil
}

// Sync makes every write committed so far durable against power loss (it
// fsyncs badger's write-ahead log). See doc.go for when Ferry calls it.
func (db *DB) Sync() error {
	db.gate.RLock()
	defer db.gate.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.bdb.Sync(); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	return nil
}

// DiskSize returns the bytes the database's files occupy on disk (blocks
// allocated, so the sparse preallocated log files count for what they
// hold). It is 0 for an in-memory DB.
func (db *DB) DiskSize() (int64, error) {
	if db.dir == "" {
		return 0, nil
	}
	return dirDiskSize(db.dir)
}

func dirDiskSize(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("size of state %s: %w", dir, err)
	}
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		total += allocated(info)
	}
	return total, nil
}

func (db *DB) gcLoop() {
	defer close(db.gcDone)
	t := time.NewTicker(gcInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stopGC:
			return
		case <-t.C:
			db.valueLogGC()
		}
	}
}

// valueLogGC reclaims value-log space. RunValueLogGC rewrites at most one
// file per call; repeat while it finds work. It rewrites through normal
// writes, so it holds the gate like any writer.
func (db *DB) valueLogGC() {
	db.gate.RLock()
	defer db.gate.RUnlock()
	for i := 0; i < 10 && !db.closed.Load(); i++ {
		err := db.bdb.RunValueLogGC(0.5)
		if err != nil {
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				db.log.Warn("state value log gc failed", slog.String("error", err.Error()))
			}
			return
		}
	}
}

// write runs fn holding the write gate, after checking the DB is open.
func (db *DB) write(fn func() error) error {
	db.gate.RLock()
	defer db.gate.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	return fn()
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (db *DB) update(fn func(txn *badger.Txn) error) error {
	return db.write(func() error {
		for attempt := 0; ; attempt++ {
			err := db.bdb.Update(fn)
			if errors.Is(err, badger.ErrConflict) && attempt < 20 {
				continue
			}
			return err
		}
	})
}

// view runs fn in a read-only transaction. It holds the gate too, so that
// Close waits for reads in flight. fn must not call back into DB methods
// (a write waiting for the gate would deadlock it).
func (db *DB) view(fn func(txn *badger.Txn) error) error {
	db.gate.RLock()
	defer db.gate.RUnlock()
	if db.closed.Load() {
		return ErrClosed
	}
	return db.bdb.View(fn)
}

// batch is a non-atomic bulk writer (badger's WriteBatch): it splits into
// as many transactions as needed and commits them in the background.
func (db *DB) batch(fn func(wb *badger.WriteBatch) error) error {
	return db.write(func() error {
		wb := db.bdb.NewWriteBatch()
		if err := fn(wb); err != nil {
			wb.Cancel()
			return err
		}
		return wb.Flush()
	})
}

// get reads one value; found is false when the key is absent.
func get(txn *badger.Txn, k []byte, fn func(v []byte) error) (found bool, err error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(fn)
}

// scanChunk is how many items scan reads per transaction.
const scanChunk = 1000

// scan calls fn with a copy of every key (and value, unless keysOnly) that
// starts with prefix, in key order (reverse: descending). It reads in
// chunks, each in its own short read transaction, and calls fn outside any
// transaction: fn may write to the database, and a slow fn does not pin
// old table files. The price is that scan is not one snapshot: keys
// written or deleted while it runs may or may not be seen.
func (db *DB) scan(prefix []byte, reverse, keysOnly bool, fn func(k, v []byte) error) error {
	// Each chunk's keys and values are copied into one fresh arena (the
	// callbacks may keep them), so a chunk costs a handful of allocations.
	type span struct{ k0, k1, v1 int }
	var (
		spans []span
		arena []byte
		last  []byte
	)
	for {
		spans = spans[:0]
		arena = make([]byte, 0, max(cap(arena), 64<<10))
		err := db.view(func(txn *badger.Txn) error {
			o := badger.DefaultIteratorOptions
			if !reverse {
				// Lets badger skip tables without the prefix. Not in
				// reverse: the seek key (the prefix's end) lies outside
				// the prefix and the iterator would hide it.
				o.Prefix = prefix
			}
			o.Reverse = reverse
			o.PrefetchValues = false
			it := txn.NewIterator(o)
			defer it.Close()
			seek := last
			if seek == nil {
				seek = prefix
				if reverse {
					seek = prefixEnd(prefix)
					if seek == nil {
						seek = append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 64)...)
					}
				}
			}
			it.Seek(seek)
			// Seek lands on seek itself when it exists: skip the last key
			// of the previous chunk, and in reverse the prefix's end.
			if it.Valid() && bytes.Equal(it.Item().Key(), seek) && (last != nil || reverse) {
				it.Next()
			}
			for ; it.ValidForPrefix(prefix) && len(spans) < scanChunk; it.Next() {
				item := it.Item()
				sp := span{k0: len(arena)}
				arena = append(arena, item.Key()...)
				sp.k1 = len(arena)
				if !keysOnly {
					if err := item.Value(func(v []byte) error {
						arena = append(arena, v...)
						return nil
					}); err != nil {
						return err
					}
				}
				sp.v1 = len(arena)
				spans = append(spans, sp)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, sp := range spans {
			var v []byte
			if !keysOnly {
				v = arena[sp.k1:sp.v1:sp.v1]
			}
			if err := fn(arena[sp.k0:sp.k1:sp.k1], v); err != nil {
				return err
			}
		}
		if len(spans) < scanChunk {
			return nil
		}
		sp := spans[len(spans)-1]
		last = arena[sp.k0:sp.k1:sp.k1]
	}
}

// deletePrefixes removes every key under each prefix with tombstones
// written in bulk. Unlike badger's DropPrefix it does not block writers.
func (db *DB) deletePrefixes(prefixes ...[]byte) error {
	for _, p := range prefixes {
		var keys [][]byte
		flush := func() error {
			if len(keys) == 0 {
				return nil
			}
			err := db.batch(func(wb *badger.WriteBatch) error {
				for _, k := range keys {
					if err := wb.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
			keys = keys[:0]
			return err
		}
		err := db.scan(p, false, true, func(k, _ []byte) error {
			keys = append(keys, k)
			if len(keys) >= 10000 {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// badgerLogger routes badger's log lines to slog. Badger's Infof is
// chatty (every open, flush and compaction), so it goes to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.log(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log(slog.LevelDebug, f, a) }

func (b badgerLogger) log(level slog.Level, f string, a []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, "badger", slog.String("detail", strings.TrimSpace(fmt.Sprintf(f, a...))))
}

var _ badger.Logger = badgerLogger{}

// callerErr marks an error returned by a caller's callback so that the
// iterating method returns it as-is (see finish) instead of wrapping it.
func callerErr(err error) error {
	if err == nil {
		return nil
	}
	return callbackError{err}
}

type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// finish returns a callback's error unchanged, wraps any other with op.
func finish(op string, err error) error {
	var ce callbackError
	if errors.As(err, &ce) {
		return ce.err
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}
