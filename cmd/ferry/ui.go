package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// isTerminal reports whether w is a terminal (progress bars only go there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printable makes text safe to show on a terminal: every byte a terminal
// would act on (ESC, BEL and the other control characters, C1 controls,
// DEL) and every byte of invalid UTF-8 is written as its Go escape (\x1b,
// \a, \u009b), the way remote.PrintableKey quotes a key; newlines, tabs and
// all printable text stay as they are, so messages read as before. Use
// remote.PrintableKey for a name on its own (a list, a table cell): it also
// quotes the whole name, so that "\n" in a name is not a new line.
func printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t' || strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || (r != '\n' && r != '\t' && !strconv.IsPrint(r)) {
			return true
		}
	}
	return false
}

// printableWriter writes what it is given through printable. Each Write
// must hold whole runes, as fmt.Fprintf and tabwriter's cells do; a
// buffered writer (csv, bufio) must not sit between it and the text.
type printableWriter struct{ w io.Writer }

func (p printableWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, printable(string(b))); err != nil {
		return 0, err
	}
	return len(b), nil
}

// text is standard output for people: tables, summaries, messages. JSON
// and CSV for programs go to g.stdout, exact.
func (g *globalOptions) text() io.Writer { return printableWriter{g.stdout} }

// textErr is standard error for people (warnings, errors). Progress bars,
// which draw with escapes of their own, write to g.stderr.
func (g *globalOptions) textErr() io.Writer { return printableWriter{g.stderr} }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned human output; call Flush.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

func bytesStr(n int64) string {
	if n < 0 {
		n = 0
	}
	return humanize.IBytes(uint64(n))
}

// timeStr shows t in the local zone, named, so that a reader never has to
// guess which zone a time is in ("2026-11-23 14:05:00 CET").
func timeStr(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func durationStr(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// jobProgress renders a sync job's progress on a terminal: files, bytes,
// speed and ETA on one line. On anything but a terminal it prints nothing.
type jobProgress struct {
	bar *progressbar.ProgressBar
}

func newJobProgress(w io.Writer, enabled bool) *jobProgress {
	if !enabled || !isTerminal(w) {
		return &jobProgress{}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
	return &jobProgress{bar: bar}
}

func (p *jobProgress) update(pr syncer.Progress) {
	if p.bar == nil {
		return
	}
	phase := pr.Phase
	if phase == "scanning" && pr.BytesTransferred > 0 {
		phase = "copying (still scanning)"
	}
	desc := fmt.Sprintf("%s: %d/%d files", phase, pr.FilesDone, pr.FilesTotal)
	if !pr.ScanDone {
		desc += " found so far"
	}
	if pr.FilesFailed > 0 {
		desc += fmt.Sprintf(", %d failed", pr.FilesFailed)
	}
	p.bar.Describe(desc)
	if max := pr.BytesToTransfer; max > 0 && pr.ScanDone {
		p.bar.ChangeMax64(max)
	}
	_ = p.bar.Set64(pr.BytesTransferred)
}

// updateJob shows a job record's counters (a job followed on the daemon).
func (p *jobProgress) updateJob(j *state.Job) {
	c := j.Counters
	p.update(syncer.Progress{Phase: j.Status, FilesTotal: c.FilesTotal, BytesTotal: c.BytesTotal,
		FilesDone:        c.FilesTransferred + c.FilesSkipped + c.FilesFailed + c.FilesUnchanged,
		FilesTransferred: c.FilesTransferred, BytesTransferred: c.BytesTransferred, FilesFailed: c.FilesFailed})
}

func (p *jobProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
	}
}
