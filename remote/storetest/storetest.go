package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Options lists what a store may do differently from the strictest reading
// of the remote.Store contract. The zero value asks for everything.
type Options struct {
	// LargeSize is the size in bytes of the object in the "large object"
	// test. Set it above the store's multipart threshold so that the test
	// crosses it. Zero means DefaultLargeSize.
	LargeSize int64

	// SkipSHA256: the store never reports SHA-256 from Stat or List. Put must
	// still return the SHA-256 of what it received and must still refuse a
	// wrong PutMeta.SHA256 with ErrChecksum.
	SkipSHA256 bool

	// ListWithoutMeta: List reports the store's own write time as ModTime
	// and no SHA-256, because its listing API does not carry the metadata a
	// Put recorded (plain S3 ListObjectsV2). Stat must still report both.
	ListWithoutMeta bool
}

// DefaultLargeSize is the size of the large object when Options.LargeSize
// is zero. It is not a multiple of any usual part or buffer size.
const DefaultLargeSize = 4<<20 + 12345

// Run runs the conformance suite. newStore must return a fresh, empty store
// on every call and register its teardown with t.Cleanup; it is called once
// per subtest with that subtest's t. Subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) remote.Store, opt Options) {
	if opt.LargeSize <= 0 {
		opt.LargeSize = DefaultLargeSize
	}
	s := &suite{newStore: newStore, opt: opt}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"PutStatOpen", s.testPutStatOpen},
		{"OpenRange", s.testOpenRange},
		{"EmptyObject", s.testEmptyObject},
		{"UnknownSize", s.testUnknownSize},
		{"LargeObject", s.testLargeObject},
		{"KeyCharacters", s.testKeyCharacters},
		{"ListOrder", s.testListOrder},
		{"ListEmptyPrefix", s.testListEmptyPrefix},
		{"ListStopsOnCallbackError", s.testListStops},
		{"ListCanceledInCallback", s.testListCanceled},
		{"NotExist", s.testNotExist},
		{"Delete", s.testDelete},
		{"Overwrite", s.testOverwrite},
		{"RefusedKeys", s.testRefusedKeys},
		{"PutReaderFails", s.testPutReaderFails},
		{"PutWrongSize", s.testPutWrongSize},
		{"PutCanceledMidway", s.testPutCanceled},
		{"CanceledContext", s.testCanceledContext},
		{"ConcurrentPuts", s.testConcurrentPuts},
		{"ModTime", s.testModTime},
		{"SHA256", s.testSHA256},
		{"Copier", s.testCopier},
		{"DirLister", s.testDirLister},
		{"CheapListings", s.testCheapListings},
		{"ResumablePutter", s.testResumablePutter},
		{"PartLister", s.testPartLister},
		{"Placer", s.testPlacer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t)
		})
	}
}

type suite struct {
	newStore func(t *testing.T) remote.Store
	opt      Options
}

var (
	errStop = errors.New("storetest: stop listing")
	errBoom = errors.New("storetest: reader failed on purpose")
)

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// --- helpers ---------------------------------------------------------------

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// pattern returns a deterministic pseudo-random stream of n bytes.
func pattern(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

func patternBytes(seed uint64, n int64) []byte {
	b, err := io.ReadAll(pattern(seed, n))
	if err != nil {
		panic(err) // a ChaCha8 stream cannot fail
	}
	return b
}

func mustPut(t *testing.T, st remote.Store, key string, content []byte, meta remote.PutMeta) remote.ObjectInfo {
	t.Helper()
	info, err := st.Put(t.Context(), key, bytes.NewReader(content), int64(len(content)), meta)
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(content), err)
	}
	if info.Key != key || info.Size != int64(len(content)) {
		t.Fatalf("Put(%q) returned Key %q Size %d, want %q %d", key, info.Key, info.Size, key, len(content))
	}
	return info
}

func mustStat(t *testing.T, st remote.Store, key string) remote.ObjectInfo {
	t.Helper()
	info, err := st.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Key != key {
		t.Fatalf("Stat(%q) returned Key %q", key, info.Key)
	}
	return info
}

func mustRead(t *testing.T, st remote.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := st.Open(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading Open(%q, %d, %d): %v", key, offset, length, err)
	}
	return b
}

// readHash reads an object range and returns its length and SHA-256,
// without holding the content.
func readHash(t *testing.T, st remote.Store, key string, offset, length int64) (int64, string) {
	t.Helper()
	rc, err := st.Open(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("Open(%q, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		t.Fatalf("reading Open(%q, %d, %d): %v", key, offset, length, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

func list(t *testing.T, st remote.Store, prefix string) []remote.ObjectInfo {
	t.Helper()
	var got []remote.ObjectInfo
	err := st.List(t.Context(), prefix, func(info remote.ObjectInfo) error {
		got = append(got, info)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	for _, info := range got {
		if info.SkipReason != "" {
			t.Errorf("List(%q) entry %q has SkipReason %q; the store holds only valid objects", prefix, info.Key, info.SkipReason)
		}
	}
	return got
}

func keysOf(infos []remote.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, info := range infos {
		keys[i] = info.Key
	}
	return keys
}

func wantNotExist(t *testing.T, st remote.Store, key string) {
	t.Helper()
	if info, err := st.Stat(t.Context(), key); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", key, info, err)
	}
	rc, err := st.Open(t.Context(), key, 0, -1)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Open(%q) error = %v; want ErrNotExist", key, err)
	}
}

func wantEmpty(t *testing.T, st remote.Store) {
	t.Helper()
	if got := list(t, st, ""); len(got) != 0 {
		t.Errorf("List(\"\") = %q; want nothing", keysOf(got))
	}
}

func wantContent(t *testing.T, st remote.Store, key string, want []byte) {
	t.Helper()
	got := mustRead(t, st, key, 0, -1)
	if !bytes.Equal(got, want) {
		t.Errorf("content of %q is %d bytes (sha256 %s), want %d bytes (sha256 %s)",
			key, len(got), hashOf(got), len(want), hashOf(want))
	}
}

// checkSHA checks a SHA-256 reported by Stat or List: it must be right, and
// present when the store was given it (unless the store cannot report it).
func (s *suite) checkSHA(t *testing.T, what, got, want string, given bool) {
	t.Helper()
	if s.opt.SkipSHA256 {
		return
	}
	if got == "" && !given {
		return
	}
	if got != want {
		t.Errorf("%s SHA256 = %q, want %q", what, got, want)
	}
}

// --- tests -----------------------------------------------------------------

func (s *suite) testPutStatOpen(t *testing.T) {
	st := s.newStore(t)
	content := []byte("hello, ferry\n")
	put := mustPut(t, st, "dir/sub/file.txt", content, remote.PutMeta{})
	if put.SHA256 != hashOf(content) {
		t.Errorf("Put SHA256 = %q, want the hash of what was sent %q", put.SHA256, hashOf(content))
	}
	if put.ETag == "" {
		t.Error("Put returned an empty ETag")
	}
	info := mustStat(t, st, "dir/sub/file.txt")
	if info.Size != int64(len(content)) {
		t.Errorf("Stat Size = %d, want %d", info.Size, len(content))
	}
	if info.ETag != put.ETag {
		t.Errorf("Stat ETag = %q, Put returned %q", info.ETag, put.ETag)
	}
	if info.ModTime.IsZero() {
		t.Error("Stat ModTime is zero")
	}
	s.checkSHA(t, "Stat", info.SHA256, hashOf(content), false)
	wantContent(t, st, "dir/sub/file.txt", content)

	got := list(t, st, "")
	if len(got) != 1 || got[0].Key != "dir/sub/file.txt" || got[0].Size != int64(len(content)) || got[0].ETag != put.ETag {
		t.Errorf("List = %+v, want the one object with Put's size and ETag", got)
	}
}

func (s *suite) testOpenRange(t *testing.T) {
	st := s.newStore(t)
	content := patternBytes(1, 1000)
	mustPut(t, st, "r", content, remote.PutMeta{})
	tests := []struct {
		offset, length int64
		want           []byte
	}{
		{0, -1, content},
		{0, 1000, content},
		{10, 20, content[10:30]},
		{10, -1, content[10:]},
		{0, 0, nil},
		{500, 0, nil},
		{999, 1, content[999:]},
		{999, -1, content[999:]},
		{1000, -1, nil},           // offset at the end
		{1000, 10, nil},           // offset at the end, with a length
		{990, 100, content[990:]}, // length past the end
		{0, 5000, content},        // length past the end from the start
		{1500, -1, nil},           // offset past the end
		{1500, 10, nil},
	}
	for _, tt := range tests {
		got := mustRead(t, st, "r", tt.offset, tt.length)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("Open(offset %d, length %d) read %d bytes, want %d (content differs: %v)",
				tt.offset, tt.length, len(got), len(tt.want), len(got) == len(tt.want))
		}
	}
	if rc, err := st.Open(t.Context(), "r", -1, 10); err == nil {
		rc.Close()
		t.Error("Open with a negative offset succeeded; want an error")
	}
}

func (s *suite) testEmptyObject(t *testing.T) {
	st := s.newStore(t)
	put := mustPut(t, st, "empty", nil, remote.PutMeta{SHA256: emptySHA256})
	if put.SHA256 != emptySHA256 {
		t.Errorf("Put of an empty object: SHA256 = %q, want %q", put.SHA256, emptySHA256)
	}
	info := mustStat(t, st, "empty")
	if info.Size != 0 {
		t.Errorf("Stat Size = %d, want 0", info.Size)
	}
	s.checkSHA(t, "Stat", info.SHA256, emptySHA256, true)
	if got := mustRead(t, st, "empty", 0, -1); len(got) != 0 {
		t.Errorf("Open read %d bytes from an empty object", len(got))
	}
	if got := mustRead(t, st, "empty", 0, 10); len(got) != 0 {
		t.Errorf("Open(0, 10) read %d bytes from an empty object", len(got))
	}
	// An empty object with unknown size.
	if _, err := st.Put(t.Context(), "empty2", strings.NewReader(""), -1, remote.PutMeta{}); err != nil {
		t.Fatalf("Put of an empty object of unknown size: %v", err)
	}
	if info := mustStat(t, st, "empty2"); info.Size != 0 {
		t.Errorf("Stat(empty2) Size = %d, want 0", info.Size)
	}
	got := list(t, st, "")
	if !slices.Equal(keysOf(got), []string{"empty", "empty2"}) {
		t.Fatalf("List = %q, want [empty empty2]", keysOf(got))
	}
	for _, info := range got {
		if info.Size != 0 {
			t.Errorf("List entry %q Size = %d, want 0", info.Key, info.Size)
		}
	}
}

func (s *suite) testUnknownSize(t *testing.T) {
	st := s.newStore(t)
	content := patternBytes(2, 70000)
	// A plain io.Reader (not a *bytes.Reader) so the store cannot learn the
	// size some other way.
	r := io.MultiReader(bytes.NewReader(content))
	put, err := st.Put(t.Context(), "unknown", r, -1, remote.PutMeta{})
	if err != nil {
		t.Fatalf("Put with size -1: %v", err)
	}
	if put.Size != int64(len(content)) || put.SHA256 != hashOf(content) {
		t.Errorf("Put returned Size %d SHA256 %q, want %d %q", put.Size, put.SHA256, len(content), hashOf(content))
	}
	if info := mustStat(t, st, "unknown"); info.Size != int64(len(content)) {
		t.Errorf("Stat Size = %d, want %d", info.Size, len(content))
	}
	wantContent(t, st, "unknown", content)
}

func (s *suite) testLargeObject(t *testing.T) {
	st := s.newStore(t)
	size := s.opt.LargeSize
	h := sha256.New()
	if _, err := io.Copy(h, pattern(3, size)); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	put, err := st.Put(t.Context(), "large/object.bin", pattern(3, size), size, remote.PutMeta{SHA256: sum})
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", size, err)
	}
	if put.Size != size || put.SHA256 != sum || put.ETag == "" {
		t.Errorf("Put returned Size %d SHA256 %q ETag %q, want %d %q and an ETag", put.Size, put.SHA256, put.ETag, size, sum)
	}
	info := mustStat(t, st, "large/object.bin")
	if info.Size != size {
		t.Errorf("Stat Size = %d, want %d", info.Size, size)
	}
	s.checkSHA(t, "Stat", info.SHA256, sum, true)
	if n, got := readHash(t, st, "large/object.bin", 0, -1); n != size || got != sum {
		t.Errorf("read back %d bytes with sha256 %s, want %d bytes with %s", n, got, size, sum)
	}

	// Ranges in the middle (likely across a part boundary) and at the end.
	for _, rg := range [][2]int64{{size/2 - 777, 4096}, {5<<20 - 100, 200}, {size - 10, 100}} {
		off, n := rg[0], rg[1]
		if off < 0 || off >= size {
			continue
		}
		want := make([]byte, min(n, size-off))
		r := pattern(3, size)
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, want); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, st, "large/object.bin", off, n); !bytes.Equal(got, want) {
			t.Errorf("Open(%d, %d) of the large object: %d bytes, want %d (or content differs)", off, n, len(got), len(want))
		}
	}
}

// validKeys are keys with characters that stores and URLs treat specially.
var validKeys = []string{
	"with space/and,comma/\"quote\".txt",
	"naïve/日本語/файл.txt",
	"Ünïcödé ñame",
	"it's a 'single' quote",
	"percent%20encoded%2Fnot",
	"plus+sign & ampersand=equals",
	"hash#question?semi;colon",
	"brackets [1] (2) {3} <4>",
	"star*tilde~caret^pipe|",
	"emoji 🚀/x",
	"...",
	"a..b/.hidden",
	" leading and trailing space ",
}

func (s *suite) testKeyCharacters(t *testing.T) {
	st := s.newStore(t)
	for i, key := range validKeys {
		content := []byte(fmt.Sprintf("%d:%s", i, key))
		mustPut(t, st, key, content, remote.PutMeta{})
		if info := mustStat(t, st, key); info.Size != int64(len(content)) {
			t.Errorf("Stat(%q) Size = %d, want %d", key, info.Size, len(content))
		}
		wantContent(t, st, key, content)
	}
	want := slices.Clone(validKeys)
	slices.Sort(want)
	if got := keysOf(list(t, st, "")); !slices.Equal(got, want) {
		t.Errorf("List = %q\nwant   %q", got, want)
	}
	for _, key := range validKeys {
		if err := st.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
		wantNotExist(t, st, key)
	}
	wantEmpty(t, st)
}

// orderKeys are chosen so that a per-directory listing order would differ
// from the byte-wise order of full keys ('-' < '.' < '/' < '0'). No key is
// also a "directory" of another, which a filesystem could not hold.
var orderKeys = []string{
	"a/b", "a.b", "a-b", "a/c/d", "a/c.d", "a/c/e", "a/c-", "a0", "aa", "a b",
	"ba", "Z", "é", "a/c0", "b/a/b/c/d/e", "b/a/b/c.d", "b/a/b/c-d", "b-", "b.",
}

func (s *suite) testListOrder(t *testing.T) {
	st := s.newStore(t)
	// Put in a shuffled order so that insertion order cannot pass for key order.
	order := slices.Clone(orderKeys)
	rnd := rand.New(rand.NewPCG(4, 4))
	rnd.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i, key := range order {
		mustPut(t, st, key, bytes.Repeat([]byte{'x'}, i), remote.PutMeta{})
	}
	sizes := map[string]int64{}
	for i, key := range order {
		sizes[key] = int64(i)
	}
	sorted := slices.Clone(orderKeys)
	slices.Sort(sorted)

	for _, prefix := range []string{"", "a/", "a/c/", "b/", "b/a/b/", "b/a/b/c/d/"} {
		var want []string
		for _, k := range sorted {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		got := list(t, st, prefix)
		if !slices.Equal(keysOf(got), want) {
			t.Errorf("List(%q) = %q\nwant        %q", prefix, keysOf(got), want)
			continue
		}
		for _, info := range got {
			if info.Size != sizes[info.Key] {
				t.Errorf("List(%q) entry %q Size = %d, want %d", prefix, info.Key, info.Size, sizes[info.Key])
			}
			if info.ETag == "" {
				t.Errorf("List(%q) entry %q has no ETag", prefix, info.Key)
			}
		}
	}
}

// testCheapListings checks the optional listings against List: ListStat
// (remote.StatLister) gives the same entries without SHA-256; ListPlain
// (remote.PlainLister) the same keys, sizes and ETags.
func (s *suite) testCheapListings(t *testing.T) {
	st := s.newStore(t)
	sl, stat := st.(remote.StatLister)
	pl, plain := st.(remote.PlainLister)
	if !stat && !plain {
		t.Skip("the store has neither ListStat nor ListPlain")
	}
	mtime := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	for i, key := range orderKeys {
		data := bytes.Repeat([]byte{'y'}, i+1)
		mustPut(t, st, key, data, remote.PutMeta{ModTime: mtime, SHA256: hashOf(data)})
	}
	want := list(t, st, "a/")
	collect := func(name string, fn func(context.Context, string, func(remote.ObjectInfo) error) error) []remote.ObjectInfo {
		var got []remote.ObjectInfo
		if err := fn(t.Context(), "a/", func(info remote.ObjectInfo) error {
			got = append(got, info)
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(keysOf(got), keysOf(want)) {
			t.Fatalf("%s keys %q, List gives %q", name, keysOf(got), keysOf(want))
		}
		return got
	}
	if stat {
		for i, got := range collect("ListStat", sl.ListStat) {
			w := want[i]
			w.SHA256 = ""
			if got.Size != w.Size || !got.ModTime.Equal(w.ModTime) || got.ETag != w.ETag || got.SHA256 != "" {
				t.Errorf("ListStat entry %+v, want List's without SHA-256: %+v", got, w)
			}
		}
	}
	if plain {
		for i, got := range collect("ListPlain", pl.ListPlain) {
			if got.Size != want[i].Size || got.ETag != want[i].ETag {
				t.Errorf("ListPlain entry %q: size %d, ETag %q; List gives %d, %q", got.Key, got.Size, got.ETag, want[i].Size, want[i].ETag)
			}
		}
	}
}

func (s *suite) testListEmptyPrefix(t *testing.T) {
	st := s.newStore(t)
	wantEmpty(t, st)
	if got := list(t, st, "nothing/"); len(got) != 0 {
		t.Errorf("List(nothing/) on an empty store = %q", keysOf(got))
	}
	mustPut(t, st, "f", []byte("file"), remote.PutMeta{})
	mustPut(t, st, "dir/x", []byte("x"), remote.PutMeta{})
	for _, prefix := range []string{"nothing/", "f/", "di/", "dir/x/", "dir/x/y/"} {
		if got := list(t, st, prefix); len(got) != 0 {
			t.Errorf("List(%q) = %q; want nothing", prefix, keysOf(got))
		}
	}
}

func (s *suite) testListStops(t *testing.T) {
	st := s.newStore(t)
	for i := range 10 {
		mustPut(t, st, fmt.Sprintf("dir%d/obj%d", i%3, i), []byte{byte(i)}, remote.PutMeta{})
	}
	for _, stopAt := range []int{1, 4} {
		calls := 0
		err := st.List(t.Context(), "", func(remote.ObjectInfo) error {
			calls++
			if calls == stopAt {
				return errStop
			}
			return nil
		})
		if err != errStop {
			t.Errorf("List with a callback failing at call %d returned %v; want the callback's error as-is", stopAt, err)
		}
		if calls != stopAt {
			t.Errorf("List called the callback %d times after it failed at call %d", calls, stopAt)
		}
	}
}

func (s *suite) testListCanceled(t *testing.T) {
	st := s.newStore(t)
	for i := range 10 {
		mustPut(t, st, fmt.Sprintf("d%d/o%d", i%4, i), []byte{byte(i)}, remote.PutMeta{})
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	err := st.List(ctx, "", func(remote.ObjectInfo) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List canceled in its callback returned %v; want context.Canceled", err)
	}
	if calls != 1 {
		t.Errorf("List called the callback %d times after its context was canceled in the first call", calls)
	}
}

func (s *suite) testNotExist(t *testing.T) {
	st := s.newStore(t)
	wantNotExist(t, st, "missing")
	wantNotExist(t, st, "missing/deeper/key")
	mustPut(t, st, "dir/x", []byte("x"), remote.PutMeta{})
	wantNotExist(t, st, "dir")     // a "directory" is not an object
	wantNotExist(t, st, "dir/x/y") // below an object
	wantNotExist(t, st, "dir/y")
	wantNotExist(t, st, "di")
}

func (s *suite) testDelete(t *testing.T) {
	st := s.newStore(t)
	if err := st.Delete(t.Context(), "absent"); err != nil {
		t.Errorf("Delete of an absent key: %v; want nil", err)
	}
	if err := st.Delete(t.Context(), "absent/deeper"); err != nil {
		t.Errorf("Delete of an absent nested key: %v; want nil", err)
	}
	mustPut(t, st, "p/q/r", []byte("r"), remote.PutMeta{})
	mustPut(t, st, "p/keep", []byte("keep"), remote.PutMeta{})
	mustPut(t, st, "top", []byte("top"), remote.PutMeta{})

	// A "directory" is not an object: deleting it does nothing.
	if err := st.Delete(t.Context(), "p"); err != nil {
		t.Errorf("Delete(p), a directory with objects: %v; want nil", err)
	}
	mustStat(t, st, "p/q/r")

	for _, key := range []string{"p/q/r", "top"} {
		if err := st.Delete(t.Context(), key); err != nil {
			t.Fatalf("Delete(%q): %v", key, err)
		}
		wantNotExist(t, st, key)
		if err := st.Delete(t.Context(), key); err != nil {
			t.Errorf("second Delete(%q): %v; want nil", key, err)
		}
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"p/keep"}) {
		t.Errorf("List after deletes = %q, want [p/keep]", got)
	}
	if got := list(t, st, "p/q/"); len(got) != 0 {
		t.Errorf("List(p/q/) after deleting its only object = %q", keysOf(got))
	}
	// The key can be written again after a delete.
	mustPut(t, st, "p/q/r", []byte("again"), remote.PutMeta{})
	wantContent(t, st, "p/q/r", []byte("again"))
}

func (s *suite) testOverwrite(t *testing.T) {
	st := s.newStore(t)
	first := mustPut(t, st, "k", []byte("the first version"), remote.PutMeta{})
	second := mustPut(t, st, "k", []byte("v2"), remote.PutMeta{})
	if first.ETag == second.ETag {
		t.Errorf("ETag did not change when the content did: %q", first.ETag)
	}
	info := mustStat(t, st, "k")
	if info.Size != 2 || info.ETag != second.ETag {
		t.Errorf("Stat after overwrite: Size %d ETag %q, want 2 %q", info.Size, info.ETag, second.ETag)
	}
	s.checkSHA(t, "Stat after overwrite", info.SHA256, hashOf([]byte("v2")), false)
	wantContent(t, st, "k", []byte("v2"))
	// Same size, different content.
	third := mustPut(t, st, "k", []byte("v3"), remote.PutMeta{})
	if third.ETag == second.ETag {
		t.Errorf("ETag did not change when same-size content changed: %q", third.ETag)
	}
	wantContent(t, st, "k", []byte("v3"))
	if got := list(t, st, ""); len(got) != 1 || got[0].ETag != third.ETag {
		t.Errorf("List after overwrites = %+v, want one entry with ETag %q", got, third.ETag)
	}
}

// badKeys break the key rules; no store may accept them.
var badKeys = []string{
	"", "../x", "a/../../x", "..", ".", "./a", "a/./b", "/abs", "/", "a//b", "a/", "a\\b",
	"..\\x", "a\x00b", "bad\xffutf8", "\xc3", "ok/\xfe/x",
}

// badPrefixes are refused by List and ListDir.
var badPrefixes = []string{"a", "/", "/a/", "../", "a//", "a/../", "a\\b/", "\xff/", "a\x00/", "./"}

// untouchableReader fails the test if anything reads it.
type untouchableReader struct{ t *testing.T }

func (r untouchableReader) Read([]byte) (int, error) {
	r.t.Error("Put read the data of a refused key")
	return 0, io.EOF
}

func (s *suite) testRefusedKeys(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	mustPut(t, st, "x", []byte("x"), remote.PutMeta{})
	copier, _ := st.(remote.Copier)
	dirLister, _ := st.(remote.DirLister)
	check := func(op, key string, err error) {
		t.Helper()
		if !errors.Is(err, remote.ErrInvalidKey) {
			t.Errorf("%s(%q) error = %v; want ErrInvalidKey", op, key, err)
		}
	}
	for _, key := range badKeys {
		_, err := st.Stat(ctx, key)
		check("Stat", key, err)
		rc, err := st.Open(ctx, key, 0, -1)
		if err == nil {
			rc.Close()
		}
		check("Open", key, err)
		_, err = st.Put(ctx, key, untouchableReader{t}, 1, remote.PutMeta{})
		check("Put", key, err)
		check("Delete", key, st.Delete(ctx, key))
		if copier != nil {
			_, err = copier.Copy(ctx, "x", key)
			check("Copy to", key, err)
			_, err = copier.Copy(ctx, key, "y")
			check("Copy from", key, err)
		}
	}
	for _, prefix := range badPrefixes {
		err := st.List(ctx, prefix, func(info remote.ObjectInfo) error {
			t.Errorf("List(%q) called back with %q", prefix, info.Key)
			return nil
		})
		check("List", prefix, err)
		if dirLister != nil {
			err := dirLister.ListDir(ctx, prefix, func(e remote.DirEntry) error {
				t.Errorf("ListDir(%q) called back with %q", prefix, e.Info.Key)
				return nil
			})
			check("ListDir", prefix, err)
		}
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"x"}) {
		t.Errorf("after refused operations List = %q, want [x]", got)
	}
	wantContent(t, st, "x", []byte("x"))
}

func (s *suite) testPutReaderFails(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	const n = 300 << 10
	failing := func() io.Reader {
		return io.MultiReader(pattern(5, n/2), &errReader{errBoom})
	}
	if _, err := st.Put(ctx, "new/key", failing(), n, remote.PutMeta{}); err == nil {
		t.Fatal("Put with a reader that fails half-way succeeded")
	}
	wantNotExist(t, st, "new/key")
	wantEmpty(t, st)

	// With unknown size too.
	if _, err := st.Put(ctx, "new/key", failing(), -1, remote.PutMeta{}); err == nil {
		t.Fatal("Put of unknown size with a reader that fails half-way succeeded")
	}
	wantNotExist(t, st, "new/key")
	wantEmpty(t, st)

	// The previous object survives a failed overwrite.
	old := []byte("the old content")
	oldInfo := mustPut(t, st, "old", old, remote.PutMeta{})
	if _, err := st.Put(ctx, "old", failing(), n, remote.PutMeta{}); err == nil {
		t.Fatal("overwriting Put with a failing reader succeeded")
	}
	wantContent(t, st, "old", old)
	if info := mustStat(t, st, "old"); info.ETag != oldInfo.ETag || info.Size != int64(len(old)) {
		t.Errorf("after a failed overwrite Stat = %+v, want the old object %+v", info, oldInfo)
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"old"}) {
		t.Errorf("after a failed overwrite List = %q, want [old]", got)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func (s *suite) testPutWrongSize(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	content := patternBytes(6, 1000)
	if _, err := st.Put(ctx, "short", bytes.NewReader(content[:500]), 1000, remote.PutMeta{}); err == nil {
		t.Error("Put of 500 bytes announced as 1000 succeeded")
	}
	wantNotExist(t, st, "short")
	if _, err := st.Put(ctx, "long", bytes.NewReader(content), 500, remote.PutMeta{}); err == nil {
		t.Error("Put of 1000 bytes announced as 500 succeeded")
	}
	wantNotExist(t, st, "long")
	wantEmpty(t, st)

	mustPut(t, st, "old", []byte("old"), remote.PutMeta{})
	if _, err := st.Put(ctx, "old", bytes.NewReader(content[:10]), 20, remote.PutMeta{}); err == nil {
		t.Error("overwriting Put of 10 bytes announced as 20 succeeded")
	}
	wantContent(t, st, "old", []byte("old"))
}

// cancelingReader cancels a context once it has delivered `after` bytes and
// keeps delivering data afterwards: only the store noticing the context can
// stop the Put.
type cancelingReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

func (s *suite) testPutCanceled(t *testing.T) {
	st := s.newStore(t)
	const size = 1 << 20
	for _, key := range []string{"new", "old"} {
		var old []byte
		if key == "old" {
			old = []byte("previous")
			mustPut(t, st, key, old, remote.PutMeta{})
		}
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelingReader{r: pattern(7, size), after: 64 << 10, cancel: cancel}
		_, err := st.Put(ctx, key, r, size, remote.PutMeta{})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) whose context was canceled half-way returned %v; want context.Canceled", key, err)
		}
		if old == nil {
			wantNotExist(t, st, key)
		} else {
			wantContent(t, st, key, old)
		}
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"old"}) {
		t.Errorf("after canceled puts List = %q, want [old]", got)
	}
}

func (s *suite) testCanceledContext(t *testing.T) {
	st := s.newStore(t)
	mustPut(t, st, "x", []byte("x"), remote.PutMeta{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: error = %v; want context.Canceled", op, err)
		}
	}
	_, err := st.Stat(ctx, "x")
	check("Stat", err)
	rc, err := st.Open(ctx, "x", 0, -1)
	if err == nil {
		rc.Close()
	}
	check("Open", err)
	_, err = st.Put(ctx, "y", strings.NewReader("y"), 1, remote.PutMeta{})
	check("Put", err)
	check("Delete", st.Delete(ctx, "x"))
	check("List", st.List(ctx, "", func(info remote.ObjectInfo) error {
		t.Errorf("List with a canceled context called back with %q", info.Key)
		return nil
	}))
	if c, ok := st.(remote.Copier); ok {
		_, err := c.Copy(ctx, "x", "z")
		check("Copy", err)
	}
	if d, ok := st.(remote.DirLister); ok {
		check("ListDir", d.ListDir(ctx, "", func(e remote.DirEntry) error {
			t.Errorf("ListDir with a canceled context called back with %q", e.Info.Key)
			return nil
		}))
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"x"}) {
		t.Errorf("after canceled calls List = %q, want [x]", got)
	}
}

func (s *suite) testConcurrentPuts(t *testing.T) {
	st := s.newStore(t)
	const writers = 16
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = patternBytes(uint64(100+i), int64(20000+i*1000))
	}
	keyOf := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf("distinct/%02d", i)
		}
		return "same/key"
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			_, errs[i] = st.Put(t.Context(), keyOf(i), bytes.NewReader(contents[i]), int64(len(contents[i])), remote.PutMeta{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put #%d (%s): %v", i, keyOf(i), err)
		}
	}
	for i := 0; i < writers; i += 2 {
		wantContent(t, st, keyOf(i), contents[i])
	}
	got := mustRead(t, st, "same/key", 0, -1)
	info := mustStat(t, st, "same/key")
	winner := -1
	for i := 1; i < writers; i += 2 {
		if bytes.Equal(got, contents[i]) {
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("same/key holds %d bytes that match none of the writers", len(got))
	}
	if info.Size != int64(len(got)) {
		t.Errorf("Stat(same/key) Size = %d, but its content is %d bytes", info.Size, len(got))
	}
	s.checkSHA(t, "Stat(same/key)", info.SHA256, hashOf(got), false)
	entries := list(t, st, "")
	if len(entries) != writers/2+1 {
		t.Errorf("List after concurrent puts has %d entries, want %d: %q", len(entries), writers/2+1, keysOf(entries))
	}
	for _, e := range entries {
		if e.Key == "same/key" && e.Size != int64(len(got)) {
			t.Errorf("List entry same/key Size = %d, want %d", e.Size, len(got))
		}
	}
}

func closeTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Second && d < time.Second
}

func (s *suite) testModTime(t *testing.T) {
	st := s.newStore(t)
	want := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	put := mustPut(t, st, "dated", []byte("dated"), remote.PutMeta{ModTime: want})
	if !closeTime(put.ModTime, want) {
		t.Errorf("Put returned ModTime %v, want %v", put.ModTime, want)
	}
	if info := mustStat(t, st, "dated"); !closeTime(info.ModTime, want) {
		t.Errorf("Stat ModTime = %v, want %v", info.ModTime, want)
	}
	// A time in another zone names the same instant.
	other := time.Date(1999, 12, 31, 23, 59, 58, 0, time.FixedZone("UTC+5", 5*3600))
	mustPut(t, st, "zoned", []byte("zoned"), remote.PutMeta{ModTime: other})
	if info := mustStat(t, st, "zoned"); !closeTime(info.ModTime, other) {
		t.Errorf("Stat ModTime = %v, want %v", info.ModTime, other)
	}
	if !s.opt.ListWithoutMeta {
		for _, e := range list(t, st, "") {
			w := map[string]time.Time{"dated": want, "zoned": other}[e.Key]
			if !closeTime(e.ModTime, w) {
				t.Errorf("List entry %q ModTime = %v, want %v", e.Key, e.ModTime, w)
			}
		}
	}
	// Zero means "now": some real time, not the zero time.
	mustPut(t, st, "now", []byte("now"), remote.PutMeta{})
	if info := mustStat(t, st, "now"); info.ModTime.Year() < 2020 {
		t.Errorf("Stat ModTime of a Put without ModTime = %v, want the time of the Put", info.ModTime)
	}
}

func (s *suite) testSHA256(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	content := patternBytes(8, 5000)
	sum := hashOf(content)
	put := mustPut(t, st, "good", content, remote.PutMeta{SHA256: sum})
	if put.SHA256 != sum {
		t.Errorf("Put SHA256 = %q, want %q", put.SHA256, sum)
	}
	s.checkSHA(t, "Stat", mustStat(t, st, "good").SHA256, sum, true)
	if !s.opt.ListWithoutMeta {
		got := list(t, st, "")
		if len(got) != 1 {
			t.Fatalf("List = %q, want [good]", keysOf(got))
		}
		s.checkSHA(t, "List", got[0].SHA256, sum, true)
	}

	wrong := hashOf([]byte("something else"))
	_, err := st.Put(ctx, "bad", bytes.NewReader(content), int64(len(content)), remote.PutMeta{SHA256: wrong})
	if !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("Put with a wrong SHA256 returned %v; want ErrChecksum", err)
	}
	wantNotExist(t, st, "bad")

	// A failed checksum leaves the previous object in place.
	_, err = st.Put(ctx, "good", bytes.NewReader([]byte("replacement")), 11, remote.PutMeta{SHA256: wrong})
	if !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("overwriting Put with a wrong SHA256 returned %v; want ErrChecksum", err)
	}
	wantContent(t, st, "good", content)
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{"good"}) {
		t.Errorf("after checksum failures List = %q, want [good]", got)
	}

	// Large enough to go through the multipart path of stores that have one.
	size := s.opt.LargeSize
	_, err = st.Put(ctx, "large-bad", pattern(9, size), size, remote.PutMeta{SHA256: wrong})
	if !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("Put of %d bytes with a wrong SHA256 returned %v; want ErrChecksum", size, err)
	}
	wantNotExist(t, st, "large-bad")
}

// testPlacer: every store says where it is (the sync engine refuses
// overlapping source and destination by it), the same each time, and two
// fresh stores are two places.
func (s *suite) testPlacer(t *testing.T) {
	st := s.newStore(t)
	pl, ok := st.(remote.Placer)
	if !ok {
		t.Fatalf("%T does not implement remote.Placer; the sync engine cannot check it against overlapping", st)
	}
	p1, err := pl.Place()
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	p2, err := pl.Place()
	if err != nil || p2 != p1 {
		t.Fatalf("Place again = %+v, %v; want %+v", p2, err, p1)
	}
	if p1.Kind == "" || !p1.Contains(p1) {
		t.Errorf("Place %+v: want a kind, and a place that contains itself", p1)
	}
	other, ok := s.newStore(t).(remote.Placer)
	if !ok {
		t.Fatal("a second store is not a remote.Placer")
	}
	p3, err := other.Place()
	if err != nil {
		t.Fatalf("Place of a second store: %v", err)
	}
	if p1.Contains(p3) || p3.Contains(p1) {
		t.Errorf("two fresh stores overlap: %+v and %+v", p1, p3)
	}
}

func (s *suite) testCopier(t *testing.T) {
	st := s.newStore(t)
	c, ok := st.(remote.Copier)
	if !ok {
		t.Skip("the store does not implement remote.Copier")
	}
	ctx := t.Context()
	content := patternBytes(10, 3000)
	sum := hashOf(content)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mustPut(t, st, "src/file", content, remote.PutMeta{ModTime: mtime, SHA256: sum})

	info, err := c.Copy(ctx, "src/file", "dst/deep/copy")
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if info.Key != "dst/deep/copy" || info.Size != int64(len(content)) || info.ETag == "" {
		t.Errorf("Copy returned %+v, want Key dst/deep/copy, Size %d and an ETag", info, len(content))
	}
	wantContent(t, st, "dst/deep/copy", content)
	wantContent(t, st, "src/file", content)
	s.checkSHA(t, "Stat of the copy", mustStat(t, st, "dst/deep/copy").SHA256, sum, true)

	// Copy over an existing object replaces it.
	mustPut(t, st, "dst/existing", []byte("to be replaced"), remote.PutMeta{})
	if _, err := c.Copy(ctx, "src/file", "dst/existing"); err != nil {
		t.Fatalf("Copy over an existing object: %v", err)
	}
	wantContent(t, st, "dst/existing", content)

	if _, err := c.Copy(ctx, "absent", "dst/none"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Copy of an absent key returned %v; want ErrNotExist", err)
	}
	wantNotExist(t, st, "dst/none")
	want := []string{"dst/deep/copy", "dst/existing", "src/file"}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, want) {
		t.Errorf("List after copies = %q, want %q", got, want)
	}
}

func (s *suite) testDirLister(t *testing.T) {
	st := s.newStore(t)
	d, ok := st.(remote.DirLister)
	if !ok {
		t.Skip("the store does not implement remote.DirLister")
	}
	ctx := t.Context()
	for _, key := range []string{"d/x", "d/sub/y", "d/sub.txt", "d/sub2/z/w", "d/a b", "d/sub/deeper/q", "top", "e/f"} {
		mustPut(t, st, key, []byte(key), remote.PutMeta{})
	}
	listDir := func(prefix string) []remote.DirEntry {
		t.Helper()
		var got []remote.DirEntry
		err := d.ListDir(ctx, prefix, func(e remote.DirEntry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatalf("ListDir(%q): %v", prefix, err)
		}
		return got
	}
	type want struct {
		key string
		dir bool
	}
	check := func(prefix string, wants []want) {
		t.Helper()
		got := listDir(prefix)
		var gotW []want
		for _, e := range got {
			gotW = append(gotW, want{e.Info.Key, e.Dir})
			if !e.Dir && e.Info.Size != int64(len(e.Info.Key)) {
				t.Errorf("ListDir(%q) entry %q Size = %d, want %d", prefix, e.Info.Key, e.Info.Size, len(e.Info.Key))
			}
			if e.Info.SkipReason != "" {
				t.Errorf("ListDir(%q) entry %q has SkipReason %q", prefix, e.Info.Key, e.Info.SkipReason)
			}
		}
		if !slices.Equal(gotW, wants) {
			t.Errorf("ListDir(%q) = %v\nwant           %v", prefix, gotW, wants)
		}
	}
	check("", []want{{"d/", true}, {"e/", true}, {"top", false}})
	check("d/", []want{{"d/a b", false}, {"d/sub.txt", false}, {"d/sub/", true}, {"d/sub2/", true}, {"d/x", false}})
	check("d/sub/", []want{{"d/sub/deeper/", true}, {"d/sub/y", false}})
	check("d/sub2/z/", []want{{"d/sub2/z/w", false}})
	check("absent/", nil)
	check("top/", nil)

	calls := 0
	err := d.ListDir(ctx, "d/", func(remote.DirEntry) error {
		calls++
		return errStop
	})
	if err != errStop || calls != 1 {
		t.Errorf("ListDir with a failing callback returned %v after %d calls; want the callback's error after 1", err, calls)
	}
}

func (s *suite) testResumablePutter(t *testing.T) {
	st := s.newStore(t)
	rp, ok := st.(remote.ResumablePutter)
	if !ok {
		t.Skip("the store does not implement remote.ResumablePutter")
	}
	ctx := t.Context()
	ps := rp.PartSize()
	if ps <= 0 {
		t.Fatalf("PartSize() = %d", ps)
	}
	part1, part2 := patternBytes(11, ps), patternBytes(12, 1000)
	wh := sha256.New()
	wh.Write(part1)
	wh.Write(part2)
	whole := hex.EncodeToString(wh.Sum(nil))
	mtime := time.Date(2023, 4, 5, 6, 7, 8, 0, time.UTC)
	const key = "up/large object"

	if _, err := rp.InitUpload(ctx, "../x", remote.PutMeta{}); !errors.Is(err, remote.ErrInvalidKey) {
		t.Errorf("InitUpload(../x) = %v; want ErrInvalidKey", err)
	}
	id, err := rp.InitUpload(ctx, key, remote.PutMeta{ModTime: mtime})
	if err != nil {
		t.Fatalf("InitUpload: %v", err)
	}
	p1, err := rp.UploadPart(ctx, key, id, 1, bytes.NewReader(part1), ps, "")
	if err != nil {
		t.Fatalf("UploadPart(1): %v", err)
	}
	if p1.Number != 1 || p1.Size != ps || p1.SHA256 != hashOf(part1) || p1.ETag == "" {
		t.Errorf("UploadPart(1) = %+v; want number 1, size %d, SHA-256 %s and an ETag", p1, ps, hashOf(part1))
	}
	// Nothing is visible before CompleteUpload.
	wantNotExist(t, st, key)
	wantEmpty(t, st)

	// A part whose reader comes up short fails.
	if _, err := rp.UploadPart(ctx, key, id, 2, bytes.NewReader(part2[:500]), int64(len(part2)), ""); err == nil {
		t.Error("UploadPart with fewer bytes than its size succeeded")
	}
	// A part that does not hash to the SHA-256 the caller gives fails
	// with ErrChecksum.
	if _, err := rp.UploadPart(ctx, key, id, 2, bytes.NewReader(part2), int64(len(part2)), hashOf(part1)); !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("UploadPart with the wrong SHA-256 = %v; want ErrChecksum", err)
	}
	// Resume as another process would: the upload id and the finished part
	// are all it kept. This time the caller knows the part's SHA-256.
	p2, err := rp.UploadPart(ctx, key, id, 2, bytes.NewReader(part2), int64(len(part2)), hashOf(part2))
	if err != nil {
		t.Fatalf("UploadPart(2): %v", err)
	}
	if p2.Number != 2 || p2.Size != int64(len(part2)) || p2.SHA256 != hashOf(part2) {
		t.Errorf("UploadPart(2) = %+v", p2)
	}
	info, err := rp.CompleteUpload(ctx, key, id, []remote.Part{p1, p2}, remote.PutMeta{ModTime: mtime, SHA256: whole})
	if err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	size := ps + int64(len(part2))
	if info.Key != key || info.Size != size || info.ETag == "" {
		t.Errorf("CompleteUpload = %+v; want Key %q, Size %d and an ETag", info, key, size)
	}
	stat := mustStat(t, st, key)
	if stat.Size != size || !closeTime(stat.ModTime, mtime) {
		t.Errorf("Stat after CompleteUpload = %+v; want Size %d, ModTime %v", stat, size, mtime)
	}
	s.checkSHA(t, "Stat after CompleteUpload", stat.SHA256, whole, true)
	if n, got := readHash(t, st, key, 0, -1); n != size || got != whole {
		t.Errorf("read back %d bytes with sha256 %s, want %d bytes with %s", n, got, size, whole)
	}
	if _, err := rp.UploadPart(ctx, key, id, 3, bytes.NewReader(part2), int64(len(part2)), ""); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("UploadPart to a completed upload = %v; want ErrNotExist", err)
	}

	// An aborted upload leaves nothing, and its id is gone.
	id2, err := rp.InitUpload(ctx, "up/aborted", remote.PutMeta{})
	if err != nil {
		t.Fatalf("InitUpload: %v", err)
	}
	if _, err := rp.UploadPart(ctx, "up/aborted", id2, 1, bytes.NewReader(part2), int64(len(part2)), ""); err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if err := rp.AbortUpload(ctx, "up/aborted", id2); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	wantNotExist(t, st, "up/aborted")
	if _, err := rp.UploadPart(ctx, "up/aborted", id2, 2, bytes.NewReader(part2), int64(len(part2)), ""); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("UploadPart to an aborted upload = %v; want ErrNotExist", err)
	}
	if err := rp.AbortUpload(ctx, "up/aborted", id2); err != nil {
		t.Errorf("second AbortUpload = %v; want nil", err)
	}
	if got := keysOf(list(t, st, "")); !slices.Equal(got, []string{key}) {
		t.Errorf("List after the uploads = %q, want [%s]", got, key)
	}
}

// testPartLister: a resumable store must say which parts it holds, so that a
// resume after a kill sends only the missing ones. Every ResumablePutter
// must have it.
func (s *suite) testPartLister(t *testing.T) {
	st := s.newStore(t)
	rp, ok := st.(remote.ResumablePutter)
	if !ok {
		t.Skip("the store does not implement remote.ResumablePutter")
	}
	pl, ok := st.(remote.PartLister)
	if !ok {
		t.Fatal("the store is a remote.ResumablePutter but not a remote.PartLister")
	}
	ctx := t.Context()
	ps := rp.PartSize()
	const key = "lp/large object"
	if _, err := pl.ListParts(ctx, "../x", "id"); !errors.Is(err, remote.ErrInvalidKey) {
		t.Errorf("ListParts(../x) = %v; want ErrInvalidKey", err)
	}
	id, err := rp.InitUpload(ctx, key, remote.PutMeta{})
	if err != nil {
		t.Fatalf("InitUpload: %v", err)
	}
	listed := func(what string, want ...remote.Part) {
		t.Helper()
		got, err := pl.ListParts(ctx, key, id)
		if err != nil {
			t.Fatalf("ListParts %s: %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListParts %s = %+v; want %+v", what, got, want)
		}
		for i, w := range want {
			g := got[i]
			if g.Number != w.Number || g.Size != w.Size || g.ETag != w.ETag || (g.SHA256 != "" && g.SHA256 != w.SHA256) {
				t.Errorf("ListParts %s: part %+v; want %+v", what, g, w)
			}
			if g.SHA256 == "" && !s.opt.SkipSHA256 {
				t.Errorf("ListParts %s: part %d has no SHA-256", what, g.Number)
			}
		}
	}
	listed("of a new upload")

	// Parts finish in any order; the listing is in number order.
	data := [][]byte{patternBytes(21, ps), patternBytes(22, ps), patternBytes(23, 777)}
	up := func(n int, b []byte) remote.Part {
		t.Helper()
		p, err := rp.UploadPart(ctx, key, id, n, bytes.NewReader(b), int64(len(b)), "")
		if err != nil {
			t.Fatalf("UploadPart(%d): %v", n, err)
		}
		return p
	}
	p3 := up(3, data[2])
	p1 := up(1, data[0])
	listed("after parts 3 and 1", p1, p3)
	// A part sent again is listed once, as last sent.
	p1 = up(1, data[0])
	p2 := up(2, data[1])
	listed("after part 1 again and part 2", p1, p2, p3)

	// The parts listed are the ones to complete with.
	got, err := pl.ListParts(ctx, key, id)
	if err != nil {
		t.Fatal(err)
	}
	whole := hashOf(slices.Concat(data...))
	if _, err := rp.CompleteUpload(ctx, key, id, got, remote.PutMeta{SHA256: whole}); err != nil {
		t.Fatalf("CompleteUpload with the listed parts: %v", err)
	}
	if n, sum := readHash(t, st, key, 0, -1); n != 2*ps+777 || sum != whole {
		t.Errorf("read back %d bytes with sha256 %s, want %d with %s", n, sum, 2*ps+777, whole)
	}
	if _, err := pl.ListParts(ctx, key, id); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("ListParts of a completed upload = %v; want ErrNotExist", err)
	}

	id2, err := rp.InitUpload(ctx, "lp/aborted", remote.PutMeta{})
	if err != nil {
		t.Fatalf("InitUpload: %v", err)
	}
	if err := rp.AbortUpload(ctx, "lp/aborted", id2); err != nil {
		t.Fatalf("AbortUpload: %v", err)
	}
	if _, err := pl.ListParts(ctx, "lp/aborted", id2); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("ListParts of an aborted upload = %v; want ErrNotExist", err)
	}
}
