package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/mem"
)

// rawPack assembles a pack from chunk data and a trailer given as text,
// with a correct footer unless footer is set.
func rawPack(data []byte, trailer string, footer []byte) []byte {
	b := append(append([]byte{}, data...), trailer...)
	if footer != nil {
		return append(b, footer...)
	}
	return appendFooter(b, []byte(trailer))
}

func footerFor(trailer string, length uint64, magic string) []byte {
	s := sha256.Sum256([]byte(trailer))
	b := append([]byte{}, s[:]...)
	b = binary.BigEndian.AppendUint64(b, length)
	return append(b, magic...)
}

func TestEncodePack(t *testing.T) {
	chunks := [][]byte{[]byte("first chunk"), randomBytes(1, 5000), []byte("x")}
	data, sum, entries := EncodePack(chunks)
	if sum != sumHex(data) {
		t.Errorf("pack name %s is not the hash of its bytes", sum)
	}
	if string(data[len(data)-8:]) != PackMagic {
		t.Errorf("pack ends with %q", data[len(data)-8:])
	}
	var off int64
	for i, e := range entries {
		if e.SHA256 != sumHex(chunks[i]) || e.Offset != off || e.Size != int64(len(chunks[i])) ||
			!bytes.Equal(data[e.Offset:e.Offset+e.Size], chunks[i]) {
			t.Errorf("entry %d = %+v", i, e)
		}
		off += e.Size
	}
	got, err := DecodePack(data)
	if err != nil || len(got) != 3 || got[1] != entries[1] {
		t.Fatalf("DecodePack = %+v, %v", got, err)
	}
	// The trailer is exactly what encoding/json makes of it.
	tail := data[off : len(data)-PackFooterSize]
	var tr packTrailer
	if err := decodeStrict("trailer", tail, &tr); err != nil || tr.Format != FormatVersion || len(tr.Chunks) != 3 {
		t.Errorf("trailer %s: %+v, %v", tail, tr, err)
	}
	// The index alone, from the pack's tail (the footer and trailer, and
	// any bytes before them).
	for _, n := range []int{len(data) - int(off), len(data) - int(off) + 7, len(data)} {
		got, err := DecodePackIndex(data[len(data)-n:], int64(len(data)))
		if err != nil || len(got) != 3 {
			t.Errorf("DecodePackIndex of the last %d bytes = %v, %v", n, got, err)
		}
	}
	// A chunk altered: the index is fine, the chunk is not.
	bad := bytes.Clone(data)
	bad[entries[1].Offset+10] ^= 1
	if _, err := DecodePack(bad); !errors.Is(err, remote.ErrChecksum) {
		t.Errorf("DecodePack of an altered chunk: %v, want ErrChecksum", err)
	}
}

func TestDecodePackIndex(t *testing.T) {
	a, b := []byte("aaaa"), []byte("bbbbbb")
	sa, sb := sumHex(a), sumHex(b)
	data := append(bytes.Clone(a), b...)
	entry := func(sum string, off, size int64) string {
		return fmt.Sprintf(`{"sha256":%q,"offset":%d,"size":%d}`, sum, off, size)
	}
	trailer := func(entries ...string) string {
		return `{"format":2,"chunks":[` + strings.Join(entries, ",") + `]}`
	}
	good := trailer(entry(sa, 0, 4), entry(sb, 4, 6))
	tests := []struct {
		name string
		pack []byte
		want string // "" = valid, else a fragment of the error
	}{
		{"good", rawPack(data, good, nil), ""},
		{"spaces", rawPack(data, " {\"format\": 2, \"chunks\": [ "+entry(sa, 0, 4)+" , "+entry(sb, 4, 6)+"]}\n", nil), ""},
		{"empty", nil, "tail of 0 bytes"},
		{"short", []byte("FERRYPK2"), "tail of 8 bytes"},
		{"magic", rawPack(data, good, footerFor(good, uint64(len(good)), "FERRYPK1")), "no FERRYPK2 magic"},
		{"length past the pack", rawPack(data, good, footerFor(good, 1000, PackMagic)), "does not fit"},
		{"length huge", rawPack(data, good, footerFor(good, 1<<62, PackMagic)), "does not fit"},
		{"length short", rawPack(data, good, footerFor(good, uint64(len(good)-1), PackMagic)), "trailer hashes to"},
		{"trailer altered", rawPack(data, good, footerFor(strings.Replace(good, "4", "5", 1), uint64(len(good)), PackMagic)), "trailer hashes to"},
		{"format 1", rawPack(data, strings.Replace(good, `"format":2`, `"format":1`, 1), nil), "format 1"},
		{"no chunks", rawPack(nil, trailer(), nil), "lists no chunk"},
		{"null chunks", rawPack(nil, `{"format":2,"chunks":null}`, nil), "lists no chunk"},
		{"bad sum", rawPack(data, trailer(entry("AB", 0, 4), entry(sb, 4, 6)), nil), "not a SHA-256"},
		{"zero size", rawPack(data, trailer(entry(sa, 0, 0), entry(sb, 0, 10)), nil), "size 0"},
		{"too big", rawPack(data, trailer(entry(sa, 0, MaxChunkSize+1)), nil), "size 67108865"},
		{"gap", rawPack(data, trailer(entry(sa, 0, 3), entry(sb, 4, 6)), nil), "offset 4, want 3"},
		{"overlap", rawPack(data, trailer(entry(sa, 0, 4), entry(sb, 3, 7)), nil), "offset 3, want 4"},
		{"not from 0", rawPack(data, trailer(entry(sa, 1, 4)), nil), "offset 1, want 0"},
		{"twice", rawPack(data, trailer(entry(sa, 0, 4), entry(sa, 4, 6)), nil), "listed twice"},
		{"ends early", rawPack(data, trailer(entry(sa, 0, 4), entry(sb, 4, 5)), nil), "end at 9, the chunk data is 10"},
		{"ends late", rawPack(data, trailer(entry(sa, 0, 4), entry(sb, 4, 7)), nil), "past the 10 bytes"},
		{"unknown field", rawPack(data, strings.Replace(good, `"format":2`, `"format":2,"x":1`, 1), nil), "unknown field"},
		{"trailing data", rawPack(data, good+"{}", nil), "data after"},
		{"not json", rawPack(data, "garbage", nil), "invalid character"},
		{"negative offset", rawPack(data, trailer(entry(sa, -4, 4)), nil), "offset -4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := DecodePackIndex(tc.pack, int64(len(tc.pack)))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "" && (len(entries) != 2 || entries[1] != PackEntry{SHA256: sb, Offset: 4, Size: 6}):
				t.Fatalf("entries = %+v", entries)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted (%+v); want an error with %q", entries, tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFormat)):
				t.Fatalf("error %v; want ErrFormat with %q", err, tc.want)
			}
		})
	}

	// The tail must hold the whole trailer, and fit the pack.
	pack := rawPack(data, good, nil)
	if _, err := DecodePackIndex(pack[len(pack)-PackFooterSize-10:], int64(len(pack))); err == nil || !strings.Contains(err.Error(), "longer than the") {
		t.Errorf("a tail without the whole trailer: %v", err)
	}
	if _, err := DecodePackIndex(pack, int64(len(pack)-1)); !errors.Is(err, ErrFormat) {
		t.Errorf("a tail longer than the pack: %v", err)
	}
	if _, err := DecodePackIndex(pack[10:], MaxPackSize+1); !errors.Is(err, ErrFormat) {
		t.Errorf("a pack over MaxPackSize: %v", err)
	}
}

func FuzzDecodePackIndex(f *testing.F) {
	data, _, _ := EncodePack([][]byte{[]byte("one"), []byte("two"), randomBytes(3, 100)})
	f.Add(data, uint16(0))
	f.Add(data[50:], uint16(50))
	f.Add(rawPack([]byte("abc"), `{"format":2,"chunks":[{"sha256":"`+sumA+`","offset":0,"size":3}]}`, nil), uint16(0))
	f.Add([]byte(PackMagic), uint16(1))
	f.Fuzz(func(t *testing.T, tail []byte, before uint16) {
		size := int64(len(tail)) + int64(before)
		entries, err := DecodePackIndex(tail, size)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error without ErrFormat: %v", err)
			}
			return
		}
		// What is accepted lists distinct chunks that follow each other from
		// 0 and end where the trailer starts.
		var pos int64
		seen := map[string]bool{}
		for _, e := range entries {
			if !ValidSHA256(e.SHA256) || seen[e.SHA256] || e.Offset != pos || e.Size <= 0 || e.Size > MaxChunkSize {
				t.Fatalf("accepted entry %+v at %d", e, pos)
			}
			seen[e.SHA256] = true
			pos += e.Size
		}
		trailerLen := int64(binary.BigEndian.Uint64(tail[len(tail)-16 : len(tail)-8]))
		if pos != size-PackFooterSize-trailerLen {
			t.Fatalf("chunks end at %d; pack %d, trailer %d", pos, size, trailerLen)
		}
		// The writer's encoding of the same entries decodes to them.
		tr := appendTrailer(nil, entries)
		again, err := DecodePackIndex(appendFooter(bytes.Clone(tr), tr), pos+int64(len(tr))+PackFooterSize)
		if err != nil || len(again) != len(entries) {
			t.Fatalf("re-encoded trailer: %v, %v", again, err)
		}
	})
}

func TestReadPackIndex(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: mem.New()}
	put := func(chunks [][]byte) (string, int64, []PackEntry) {
		data, sum, entries := EncodePack(chunks)
		overwrite(t, st.Store, PackKey(sum), data)
		return sum, int64(len(data)), entries
	}
	// A few chunks: the trailer is in the first ranged read.
	sum, size, want := put([][]byte{randomBytes(1, 100<<10), []byte("tiny")})
	got, tail, err := readPackIndex(ctx, st, PackKey(sum), size)
	if err != nil || len(got) != 2 || got[1] != want[1] || st.packOpens.Load() != 1 || st.tailOpens.Load() != 1 {
		t.Fatalf("readPackIndex = %+v, %v; %d reads", got, err, st.packOpens.Load())
	}
	if int64(len(tail)) != size-want[1].Offset-want[1].Size {
		t.Errorf("tail of %d bytes; the pack's trailer and footer are %d", len(tail), size-want[1].Offset-want[1].Size)
	}
	// A thousand chunks: a trailer longer than the first read takes a
	// second.
	var many [][]byte
	for i := range 1000 {
		many = append(many, []byte(fmt.Sprintf("chunk %d", i)))
	}
	sum, size, _ = put(many)
	st.packOpens.Store(0)
	got, _, err = readPackIndex(ctx, st, PackKey(sum), size)
	if err != nil || len(got) != 1000 || st.packOpens.Load() != 2 {
		t.Fatalf("readPackIndex of a long trailer = %d entries, %v; %d reads", len(got), err, st.packOpens.Load())
	}
	// A pack smaller than the first read, a damaged one, a missing one.
	sum, size, _ = put([][]byte{[]byte("x")})
	if got, _, err := readPackIndex(ctx, st, PackKey(sum), size); err != nil || len(got) != 1 {
		t.Errorf("small pack: %v, %v", got, err)
	}
	if _, _, err := readPackIndex(ctx, st, PackKey(sum), size+1); !errors.Is(err, remote.ErrChecksum) && !errors.Is(err, ErrFormat) {
		t.Errorf("pack shorter than listed: %v", err)
	}
	if _, _, err := readPackIndex(ctx, st, PackKey(sumA), 1000); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("missing pack: %v", err)
	}
	if _, _, err := readPackIndex(ctx, st, PackKey(sum), 10); !errors.Is(err, ErrFormat) {
		t.Errorf("size below a footer: %v", err)
	}
}

func TestPacker(t *testing.T) {
	ctx := context.Background()
	p := newPacker(10_000, 2)
	var sent [][]PackEntry
	done := make(chan struct{})
	go func() {
		for pb := range p.full {
			sent = append(sent, append([]PackEntry(nil), pb.entries...))
			p.release(pb)
		}
		close(done)
	}()
	add := func(n int, seed uint64) {
		data := randomBytes(seed, n)
		if err := p.add(ctx, sumHex(data), data); err != nil {
			t.Fatal(err)
		}
	}
	add(4000, 1)
	add(4000, 2) // 8000 + two entries' estimate: fits
	add(4000, 3) // no longer fits: a new pack
	add(30_000, 4)
	add(10, 5)
	if err := p.flush(ctx); err != nil {
		t.Fatal(err)
	}
	close(p.full)
	<-done
	var sizes []int
	for _, es := range sent {
		sizes = append(sizes, len(es))
	}
	if fmt.Sprint(sizes) != "[2 1 1 1]" {
		t.Errorf("packs of %v chunks, want [2 1 1 1] (a chunk bigger than the target alone)", sizes)
	}
	// Two buffers: a third waits for one to be released (or for its
	// context); a released one is used again, emptied.
	p = newPacker(100, 2)
	a, err := p.take(ctx)
	if err != nil || cap(a.buf) < 100 {
		t.Fatalf("take = %v (cap %d)", err, cap(a.buf))
	}
	if _, err := p.take(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.take(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("take with every buffer in use and a canceled context: %v", err)
	}
	a.add(sumA, []byte("data"))
	p.release(a)
	if c, err := p.take(ctx); err != nil || c != a || !c.empty() || len(c.buf) != 0 {
		t.Errorf("take after a release = %p (%d entries), %v; want the released buffer, empty", c, len(c.entries), err)
	}
	// A reader that cannot pass a full pack on stops with its context.
	p = newPacker(100, 1)
	if err := p.add(ctx, sumA, make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	if err := p.add(cctx, sumB, make([]byte, 200)); !errors.Is(err, context.Canceled) {
		t.Errorf("add with no uploader and a canceled context: %v", err)
	}
}
