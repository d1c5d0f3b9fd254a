package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIndex1M writes one million file index entries the way a sync
// does (PutFiles in batches of 5,000), iterates them all, looks up 100,000
// at random and 100,000 in path order, and reports per-entry costs, the bytes per entry on disk
// after Close, and the process's peak RSS. One iteration takes several
// seconds; it runs only with -bench.
func BenchmarkIndex1M(b *testing.B) {
	const (
		n       = 1_000_000
		batch   = 5000
		lookups = 100_000
	)
	path := func(i int) string {
		return fmt.Sprintf("data/dir%03d/sub%02d/file-%07d.dat", i/10000, (i/100)%100, i)
	}
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	entry := func(i int) FileEntry {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		t := mtime.Add(time.Duration(i) * time.Millisecond)
		return FileEntry{
			Size: int64(i%100_000) * 37, ModTime: t, SHA256: hex.EncodeToString(sum[:]),
			DestETag: hex.EncodeToString(sum[8:24]), DestModTime: t, VerifiedAt: t.Add(time.Hour),
		}
	}
	for b.Loop() {
		dir := b.TempDir()
		db, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}

		// Only the PutFiles calls are timed, not making up the entries.
		var write time.Duration
		m := make(map[string]FileEntry, batch)
		for i := 0; i < n; i++ {
			m[path(i)] = entry(i)
			if len(m) == batch {
				start := time.Now()
				if err := db.PutFiles("plan", m); err != nil {
					b.Fatal(err)
				}
				write += time.Since(start)
				clear(m)
			}
		}

		start := time.Now()

		count := 0
		err = db.IterateFiles("plan", "", func(p string, e FileEntry) error {
			count++
			return nil
		})
		if err != nil || count != n {
			b.Fatalf("iterated %d, %v", count, err)
		}
		iter := time.Since(start)

		start = time.Now()
		for j := 0; j < lookups; j++ {
			if _, found, err := db.GetFile("plan", path(rand.IntN(n))); err != nil || !found {
				b.Fatalf("lookup: %v %v", found, err)
			}
		}
		get := time.Since(start)

		// In path order, as a sync walking its source looks files up.
		start = time.Now()
		for j := 0; j < lookups; j++ {
			if _, found, err := db.GetFile("plan", path(j*(n/lookups))); err != nil || !found {
				b.Fatalf("lookup: %v %v", found, err)
			}
		}
		getSeq := time.Since(start)
		// The live heap right after the bulk load: mostly the table
		// builders of the compactions it set off, plus memtable and cache.
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)

		openSize, _ := db.DiskSize()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		closedSize, err := dirDiskSize(dir)
		if err != nil {
			b.Fatal(err)
		}
		// What a daemon holds between jobs: the index reopened and read
		// once, compactions done.
		db, err = Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.IterateFiles("plan", "", func(string, FileEntry) error { return nil }); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var idle runtime.MemStats
		runtime.ReadMemStats(&idle)
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}

		b.ReportMetric(float64(write.Nanoseconds())/n, "write-ns/entry")
		b.ReportMetric(float64(idle.HeapInuse)/(1<<20), "idle-heap-MiB")
		b.ReportMetric(float64(iter.Nanoseconds())/n, "iterate-ns/entry")
		b.ReportMetric(float64(get.Nanoseconds())/lookups, "get-random-ns/lookup")
		b.ReportMetric(float64(getSeq.Nanoseconds())/lookups, "get-inorder-ns/lookup")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "after-load-heap-MiB")
		b.ReportMetric(float64(closedSize)/n, "disk-B/entry")
		b.ReportMetric(float64(openSize)/n, "disk-open-B/entry")
		if rss := peakRSS(); rss > 0 {
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		}
	}
}

// peakRSS is the process's high-water resident set (Linux), or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// BenchmarkAppendFileRecords: appending a job's success list in calls of
// 100 records, as workers finishing tasks do.
func BenchmarkAppendFileRecords(b *testing.B) {
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	recs := make([]FileRecord, 100)
	for i := range recs {
		recs[i] = FileRecord{Path: fmt.Sprintf("data/dir/file-%07d.dat", i), Size: 4096, SHA256: testSHA}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := db.AppendFileRecords("job", ListSuccess, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

func BenchmarkEncodeFileEntry(b *testing.B) {
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 123456789, time.UTC)
	e := FileEntry{Size: 123456, ModTime: mtime, SHA256: testSHA, DestETag: testETag, DestModTime: mtime, VerifiedAt: mtime}
	buf := make([]byte, 0, 128)
	for b.Loop() {
		buf = encodeFileEntry(buf[:0], e)
	}
}

func BenchmarkDecodeFileEntry(b *testing.B) {
	mtime := time.Date(2026, 11, 23, 2, 0, 0, 123456789, time.UTC)
	e := FileEntry{Size: 123456, ModTime: mtime, SHA256: testSHA, DestETag: testETag, DestModTime: mtime, VerifiedAt: mtime}
	buf := encodeFileEntry(nil, e)
	for b.Loop() {
		decodeFileEntry(buf)
	}
}
