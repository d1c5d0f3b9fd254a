package changelist

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferrysync/ferry/remote"
)

// Limits Parse applies when Options leaves them zero.
const (
	DefaultMaxBytes     = 1 << 30 // 1 GiB of CSV (after decompression)
	DefaultMaxLineBytes = 64 << 10
	DefaultMaxRows      = 10_000_000
)

// Options limit what Parse accepts. A zero field takes its default.
type Options struct {
	// MaxBytes is the largest CSV content accepted, counted after gzip
	// decompression (so a small .gz cannot expand without bound).
	MaxBytes int64
	// MaxLineBytes is the longest row accepted (a quoted field may make a
	// row span several lines; the limit is on the whole row).
	MaxLineBytes int
	// MaxRows is the most data rows accepted (the header not counted).
	MaxRows int
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	return o
}

// List is a parsed changelist.
type List struct {
	// Name is the list's name as given to Parse, for messages.
	Name string
	// SHA256 is the hex SHA-256 of the CSV content (after decompression, so
	// a list and its gzipped copy have the same one). The inbox ledger uses
	// it to recognize a list dropped twice.
	SHA256 string
	// Gzip is true when the content was gzip-compressed.
	Gzip bool
	// Header is true when the first row was a header.
	Header bool
	// IgnoredColumns are header columns Ferry does not know, in order.
	IgnoredColumns []string
	// Rows counts the data rows read, good and bad (not the header).
	Rows int
	// Upserts and Deletes are keys relative to the plan's source, each at
	// most once and never in both: when a path has several rows, the last
	// one decides. They are in the order of each path's first row.
	Upserts []string
	Deletes []string
	// Skipped are the bad rows, in file order.
	Skipped []Skipped
}

// Skipped is a row that was refused. Reason names the list and the line,
// so it can go to a job's skipped list as it is.
type Skipped struct {
	Line   int    // line of the row in the file (1-based)
	Path   string // the row's path, printable (see remote.PrintableKey)
	Reason string // e.g. `changelist a.csv line 4: invalid path: has a ".." component`
}

// ErrRejected is wrapped by every *RejectError.
var ErrRejected = errors.New("changelist rejected")

// RejectError says why a whole list was refused: nothing from it may be
// synced.
type RejectError struct {
	File   string
	Line   int // 0 when the problem is not on one line (e.g. the file's size)
	Reason string
}

func (e *RejectError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("changelist %s line %d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("changelist %s: %s", e.File, e.Reason)
}

func (e *RejectError) Unwrap() error { return ErrRejected }

// op is what a row asks for.
type op uint8

const (
	opUpsert op = iota + 1
	opDelete
)

// parseOp maps the op column to an op; "" is an upsert.
func parseOp(s string) (op, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "upsert", "add", "modify", "a", "m":
		return opUpsert, true
	case "delete", "d":
		return opDelete, true
	}
	return 0, false
}

// Header column names.
const (
	colPath   = "path"
	colOp     = "op"
	colSize   = "size"
	colMtime  = "mtime"
	colSHA256 = "sha256"
)

var knownColumns = []string{colPath, colOp, colSize, colMtime, colSHA256}

// readSlack is the read-ahead of the buffer between the guard and the CSV
// reader: the guard may have passed this much beyond the row being read.
const readSlack = 4096

// Parse reads a ChangeList: UTF-8 CSV (RFC 4180), gzip-compressed when name
// ends in ".gz" or the content starts with gzip's magic bytes. name is used
// in messages (and to detect ".gz").
//
// A structurally broken list — a quoting error, a header without a path
// column, text that is not UTF-8, a file, row or row count over the
// limits, a corrupt gzip stream — yields a *RejectError and no List. It
// stops reading as soon as it knows: a 2 GiB line costs MaxLineBytes of
// reading, not 2 GiB. Other errors are the reader's, wrapped.
//
// Bad rows (an invalid path, an unknown op, a malformed size, mtime or
// sha256) are kept in List.Skipped; every path in Upserts and Deletes
// passes remote.ValidateKey.
func Parse(r io.Reader, name string, opts Options) (*List, error) {
	opts = opts.withDefaults()
	l := &List{Name: name}
	reject := func(line int, format string, args ...any) error {
		return &RejectError{File: name, Line: line, Reason: fmt.Sprintf(format, args...)}
	}

	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read changelist %s: %w", name, err)
	}
	l.Gzip = len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	var src io.Reader = br
	if l.Gzip {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, reject(0, "not a valid gzip file: %v", err)
		}
		defer zr.Close()
		src = zr
	} else if hasGzipSuffix(name) {
		return nil, reject(0, "the name ends in .gz but the content is not gzip-compressed")
	}

	g := &guard{r: src, h: sha256.New(), maxBytes: opts.MaxBytes, maxRow: int64(opts.MaxLineBytes)}
	cr := csv.NewReader(bufio.NewReaderSize(g, readSlack))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true

	p := &rowParser{list: l, opts: opts, ops: make(map[string]op)}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, g.explain(err, name, l.Gzip)
		}
		line, _ := cr.FieldPos(0)
		end := cr.InputOffset()
		if end-g.rowStart > int64(opts.MaxLineBytes) {
			return nil, reject(line, "the row is longer than %d bytes (the limit for one row)", opts.MaxLineBytes)
		}
		g.setRowStart(end)
		for i, f := range rec {
			if !utf8.ValidString(f) {
				fl, fc := cr.FieldPos(i)
				return nil, reject(fl, "column %d is not valid UTF-8 text (at byte %d of the line); a changelist must be UTF-8", i+1, fc)
			}
		}
		if first {
			rec[0] = strings.TrimPrefix(rec[0], "\uFEFF") // a byte-order mark, as spreadsheets write
			isHeader, err := p.header(rec)
			if err != nil {
				return nil, reject(line, "%v", err)
			}
			if isHeader {
				continue
			}
		}
		if l.Rows == opts.MaxRows {
			return nil, reject(line, "more than %d rows (the limit for one list); split it into several lists", opts.MaxRows)
		}
		l.Rows++
		p.row(rec, line)
	}
	l.SHA256 = hex.EncodeToString(g.h.Sum(nil))
	for _, k := range p.order {
		switch p.ops[k] {
		case opUpsert:
			l.Upserts = append(l.Upserts, k)
		case opDelete:
			l.Deletes = append(l.Deletes, k)
		}
	}
	return l, nil
}

func hasGzipSuffix(name string) bool {
	return strings.HasSuffix(strings.ToLower(name), ".gz")
}

// rowParser turns records into the list's paths and skipped rows.
type rowParser struct {
	list *List
	opts Options
	// cols maps a known column to its index; nil without a header.
	cols  map[string]int
	width int // cells in the header
	ops   map[string]op
	order []string
}

// header decides whether rec (the first row) is a header: it is when one of
// its cells is "path". A first row of several cells that names other known
// columns but not path is an error.
func (p *rowParser) header(rec []string) (bool, error) {
	cols := make(map[string]int)
	var known, ignored []string
	var dup string
	for i, cell := range rec {
		name := strings.ToLower(strings.TrimSpace(cell))
		if !isKnownColumn(name) {
			ignored = append(ignored, cell)
			continue
		}
		if _, seen := cols[name]; seen && dup == "" {
			dup = name
		}
		cols[name] = i
		known = append(known, name)
	}
	if _, ok := cols[colPath]; !ok {
		if len(rec) > 1 && len(known) > 0 {
			return false, fmt.Errorf("the header row (%s) has no path column; a header must name a path column (with op, size, mtime, sha256 optional), or the list must have no header and one path per row",
				strings.Join(known, ", "))
		}
		return false, nil
	}
	if dup != "" {
		return false, fmt.Errorf("the header names column %q twice", dup)
	}
	p.cols = cols
	p.width = len(rec)
	p.list.Header = true
	p.list.IgnoredColumns = ignored
	return true, nil
}

func isKnownColumn(name string) bool {
	for _, c := range knownColumns {
		if name == c {
			return true
		}
	}
	return false
}

// field returns the cell of column name, or "" when the row is short or the
// header has no such column.
func (p *rowParser) field(rec []string, name string) (string, bool) {
	i, ok := p.cols[name]
	if !ok || i >= len(rec) {
		return "", ok
	}
	return rec[i], true
}

func (p *rowParser) row(rec []string, line int) {
	path := rec[0]
	o := opUpsert
	var problems []string
	if p.cols != nil {
		path, _ = p.field(rec, colPath)
		if s, _ := p.field(rec, colOp); s != "" {
			var ok bool
			if o, ok = parseOp(s); !ok {
				problems = append(problems, fmt.Sprintf("unknown op %q; use upsert (or add, modify, A, M) or delete (or D)", s))
			}
		}
		if s, _ := p.field(rec, colSize); strings.TrimSpace(s) != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil || n < 0 {
				problems = append(problems, fmt.Sprintf("size %q is not a whole number of bytes", s))
			}
		}
		if s, _ := p.field(rec, colMtime); strings.TrimSpace(s) != "" {
			if _, ok := parseMtime(strings.TrimSpace(s)); !ok {
				problems = append(problems, fmt.Sprintf("mtime %q is neither RFC 3339 (2026-11-23T10:15:00Z) nor Unix seconds", s))
			}
		}
		if s, _ := p.field(rec, colSHA256); strings.TrimSpace(s) != "" {
			if !isSHA256(strings.TrimSpace(s)) {
				problems = append(problems, fmt.Sprintf("sha256 %q is not 64 hex digits", s))
			}
		}
		if len(rec) > p.width {
			problems = append(problems, fmt.Sprintf("the row has %d fields, the header %d (is a comma in a path unquoted?)", len(rec), p.width))
		}
	}
	key, err := remote.UserPathToKey(path)
	if err != nil {
		var ke *remote.KeyError
		reason := err.Error()
		if errors.As(err, &ke) {
			reason = ke.Reason
		}
		if path == "" {
			reason = "is empty"
		}
		problems = append([]string{"invalid path: " + reason}, problems...)
	}
	if len(problems) > 0 {
		p.list.Skipped = append(p.list.Skipped, Skipped{
			Line:   line,
			Path:   remote.PrintableKey(path),
			Reason: fmt.Sprintf("changelist %s line %d: %s", p.list.Name, line, strings.Join(problems, "; ")),
		})
		return
	}
	if _, seen := p.ops[key]; !seen {
		p.order = append(p.order, key)
	}
	p.ops[key] = o
}

// parseMtime accepts RFC 3339 or Unix seconds (with an optional fraction).
func parseMtime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < -1e12 || f > 1e12 || strings.ContainsAny(s, "eExXpP_") {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// guard sits between the (decompressed) content and the CSV reader: it
// hashes what passes, and fails the read as soon as the content passes
// maxBytes or the row being read passes maxRow (plus the reader's
// read-ahead), so an endless line is refused after a few KiB.
type guard struct {
	r        io.Reader
	h        hash.Hash
	n        int64 // bytes passed
	maxBytes int64
	maxRow   int64
	rowStart int64 // offset where the row being read began (setRowStart)
	// nl holds the offsets of the newlines passed at or after rowStart;
	// linesBefore counts those before it. The window is bounded by maxRow.
	nl          []int64
	linesBefore int
	err         error
}

// limitError is the guard's verdict.
type limitError struct {
	line   int
	reason string
}

func (e *limitError) Error() string { return e.reason }

// setRowStart records that the CSV reader finished a row at offset off.
func (g *guard) setRowStart(off int64) {
	i := 0
	for i < len(g.nl) && g.nl[i] < off {
		i++
	}
	g.linesBefore += i
	g.nl = append(g.nl[:0], g.nl[i:]...)
	g.rowStart = off
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	// Never read more than one byte past a limit: that byte proves it.
	room := min(g.maxBytes+1-g.n, g.rowStart+g.maxRow+readSlack+1-g.n)
	if room <= 0 {
		room = 1
	}
	if int64(len(p)) > room {
		p = p[:room]
	}
	n, err := g.r.Read(p)
	g.h.Write(p[:n])
	for i, b := range p[:n] {
		if b == '\n' {
			g.nl = append(g.nl, g.n+int64(i))
		}
	}
	g.n += int64(n)
	switch {
	case g.n > g.maxBytes:
		g.err = &limitError{reason: fmt.Sprintf("the content is larger than %d bytes (the limit for one list); split it into several lists", g.maxBytes)}
	case g.n-g.rowStart > g.maxRow+readSlack:
		g.err = &limitError{line: g.linesBefore + 1, reason: fmt.Sprintf("the row is longer than %d bytes (the limit for one row)", g.maxRow)}
	}
	if g.err != nil {
		return 0, g.err
	}
	return n, err
}

// explain turns an error from the CSV reader into a *RejectError where the
// list is at fault, or wraps it.
func (g *guard) explain(err error, name string, gz bool) error {
	var le *limitError
	var pe *csv.ParseError
	switch {
	case errors.As(err, &le):
		return &RejectError{File: name, Line: le.line, Reason: le.reason}
	case errors.As(err, &pe):
		reason := pe.Err.Error()
		switch {
		case errors.Is(pe.Err, csv.ErrQuote):
			reason = `unterminated or malformed quoted field (started on line ` + strconv.Itoa(pe.StartLine) +
				`): a quoted field must end with a quote, and a quote inside it must be doubled ("a""b")`
		case errors.Is(pe.Err, csv.ErrBareQuote):
			reason = `a quote inside an unquoted field; quote the whole field and double the quote ("a""b")`
		}
		return &RejectError{File: name, Line: pe.Line, Reason: reason}
	case gz && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) || isFlateError(err)):
		return &RejectError{File: name, Reason: "the gzip stream is corrupt or truncated: " + err.Error()}
	}
	return fmt.Errorf("read changelist %s: %w", name, err)
}

// isFlateError reports a corrupt deflate stream.
func isFlateError(err error) bool {
	var ce flate.CorruptInputError
	var ie flate.InternalError
	return errors.As(err, &ce) || errors.As(err, &ie)
}
