package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrysync/ferry/changelist"
	"github.com/ferrysync/ferry/remote"
)

func init() { commandConstructors = append(commandConstructors, newChangelistCommand) }

func newChangelistCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "changelist",
		Short: "Check ChangeList CSV files",
	}
	cmd.AddCommand(newChangelistValidateCommand(g))
	return cmd
}

type changelistValidateOptions struct {
	strict bool
	paths  bool
}

func newChangelistValidateCommand(g *globalOptions) *cobra.Command {
	var o changelistValidateOptions
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a changelist and print what it asks for",
		Long: `Validate reads a ChangeList CSV file (.csv or .csv.gz) as a plan's inbox
would and prints how many rows, upserts, deletes and skipped rows it has, and
every skipped row with its line and reason. Nothing is synced.

A structurally broken file (unterminated quote, header without a path column,
not UTF-8, over the size limits) would be rejected whole: validate prints why
and where, and exits 1. With --strict, skipped rows also make it exit 1.
docs/changelist.md describes the format.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("changelist validate needs one FILE (got %d arguments)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runChangelistValidate(g, args[0], o)
		},
	}
	cmd.Flags().BoolVar(&o.strict, "strict", false, "exit 1 also when some rows would be skipped")
	cmd.Flags().BoolVar(&o.paths, "paths", false, "also print every path to upsert and to delete")
	return cmd
}

// changelistReport is validate's JSON output.
type changelistReport struct {
	File           string             `json:"file"`
	Valid          bool               `json:"valid"`
	Error          *changelistProblem `json:"error,omitempty"`
	SHA256         string             `json:"sha256,omitempty"`
	Gzip           bool               `json:"gzip"`
	Header         bool               `json:"header"`
	IgnoredColumns []string           `json:"ignored_columns,omitempty"`
	Rows           int                `json:"rows"`
	Upserts        int                `json:"upserts"`
	Deletes        int                `json:"deletes"`
	Skipped        []changelistSkip   `json:"skipped"`
	UpsertPaths    []string           `json:"upsert_paths,omitempty"`
	DeletePaths    []string           `json:"delete_paths,omitempty"`
}

type changelistProblem struct {
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
}

type changelistSkip struct {
	Line   int    `json:"line"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func runChangelistValidate(g *globalOptions, file string, o changelistValidateOptions) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("changelist validate: %w", err)
	}
	defer f.Close()
	l, err := changelist.Parse(f, file, changelist.Options{})
	var re *changelist.RejectError
	if errors.As(err, &re) {
		if g.json {
			rep := changelistReport{File: file, Error: &changelistProblem{Line: re.Line, Reason: re.Reason}, Skipped: []changelistSkip{}}
			if jerr := printJSON(g.stdout, rep); jerr != nil {
				return errors.Join(err, jerr)
			}
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("%w; the whole list would be rejected", err)}
	}
	if err != nil {
		return err
	}
	rep := changelistReport{
		File: file, Valid: true, SHA256: l.SHA256, Gzip: l.Gzip, Header: l.Header, IgnoredColumns: l.IgnoredColumns,
		Rows: l.Rows, Upserts: len(l.Upserts), Deletes: len(l.Deletes), Skipped: []changelistSkip{},
	}
	for _, s := range l.Skipped {
		reason := strings.TrimPrefix(s.Reason, fmt.Sprintf("changelist %s line %d: ", file, s.Line))
		rep.Skipped = append(rep.Skipped, changelistSkip{Line: s.Line, Path: s.Path, Reason: reason})
	}
	if o.paths {
		rep.UpsertPaths, rep.DeletePaths = l.Upserts, l.Deletes
	}
	if g.json {
		err = printJSON(g.stdout, rep)
	} else {
		err = writeChangelistReport(g.text(), rep)
	}
	if err != nil {
		return err
	}
	if o.strict && len(rep.Skipped) > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("changelist %s: %d of %d rows would be skipped (--strict)", file, len(rep.Skipped), rep.Rows)}
	}
	return nil
}

func writeChangelistReport(w io.Writer, r changelistReport) error {
	format := "CSV, one path per row (no header)"
	if r.Header {
		format = "CSV with a header row"
	}
	if r.Gzip {
		format += ", gzip-compressed"
	}
	var b strings.Builder
	switch skipped := len(r.Skipped); {
	case skipped > 0 && skipped == r.Rows:
		fmt.Fprintf(&b, "Changelist %s is well-formed, but none of its %d rows is usable (all would be skipped).\n", r.File, r.Rows)
	case skipped > 0:
		fmt.Fprintf(&b, "Changelist %s is well-formed; %d of its %d rows would be skipped.\n", r.File, skipped, r.Rows)
	default:
		fmt.Fprintf(&b, "Changelist %s is valid.\n", r.File)
	}
	t := newTable(&b)
	fmt.Fprintf(t, "  format\t%s\n", format)
	if len(r.IgnoredColumns) > 0 {
		fmt.Fprintf(t, "  ignored columns\t%s\n", strings.Join(r.IgnoredColumns, ", "))
	}
	fmt.Fprintf(t, "  sha256\t%s\n", r.SHA256)
	fmt.Fprintf(t, "  rows\t%d\n", r.Rows)
	fmt.Fprintf(t, "  upserts\t%d\n", r.Upserts)
	fmt.Fprintf(t, "  deletes\t%d\n", r.Deletes)
	fmt.Fprintf(t, "  skipped\t%d\n", len(r.Skipped))
	t.Flush()
	if len(r.Skipped) > 0 {
		b.WriteString("Skipped rows (a job would list them as skipped):\n")
		for _, s := range r.Skipped {
			fmt.Fprintf(&b, "  line %d: %s: %s\n", s.Line, s.Path, s.Reason)
		}
	}
	if len(r.UpsertPaths) > 0 {
		b.WriteString("Upserts:\n")
		for _, p := range r.UpsertPaths {
			fmt.Fprintf(&b, "  %s\n", remote.PrintableKey(p))
		}
	}
	if len(r.DeletePaths) > 0 {
		b.WriteString("Deletes:\n")
		for _, p := range r.DeletePaths {
			fmt.Fprintf(&b, "  %s\n", remote.PrintableKey(p))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
