package main

// The helpers of scenarios (d), (e) and (f): a plain GET to measure the
// direct read speed, and waits and edits that bench/run.sh times around.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// runGet reads one object with a single plain GetObject and discards it:
// the direct read that the FUSE mounts are compared with.
func runGet(args []string) error {
	fl := flag.NewFlagSet("get", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	bucket := fl.String("bucket", "", "bucket")
	key := fl.String("key", "", "object key")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	obj, err := c.GetObject(context.Background(), *bucket, *key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get %s: %w", *key, err)
	}
	defer obj.Close()
	n, err := io.CopyBuffer(io.Discard, obj, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", *key, err)
	}
	fmt.Printf("got 1 object, %d bytes\n", n)
	return nil
}

func countObjects(ctx context.Context, c *minio.Client, bucket, prefix string) (n, size int64, err error) {
	for obj := range c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return 0, 0, obj.Err
		}
		n++
		size += obj.Size
	}
	return n, size, nil
}

// runWaitCount lists the prefix every 50 ms until it holds count objects
// of bytes in all, then prints the Unix time in nanoseconds at which that
// listing was answered.
func runWaitCount(args []string) error {
	fl := flag.NewFlagSet("waitcount", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	bucket := fl.String("bucket", "", "bucket")
	prefix := fl.String("prefix", "", "key prefix")
	count := fl.Int64("count", 0, "objects expected")
	size := fl.Int64("bytes", 0, "total bytes expected")
	timeout := fl.Duration("timeout", 10*time.Minute, "how long to wait")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		n, b, err := countObjects(context.Background(), c, *bucket, *prefix)
		now := time.Now()
		if err == nil && n == *count && b == *size {
			fmt.Println(now.UnixNano())
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("%s/%s holds %d objects, %d bytes after %s (want %d, %d; err %v)",
				*bucket, *prefix, n, b, *timeout, *count, *size, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runModify overwrites bytes [offset, offset+length) of every file named
// in list (paths relative to root, one per line) with new random bytes, in
// place, so sizes stay the same and each file's mtime changes. Length 0
// means to the end of the file. It prints the Unix time in nanoseconds
// after the last file was closed: the moment of the last write.
func runModify(args []string) error {
	fl := flag.NewFlagSet("modify", flag.ContinueOnError)
	root := fl.String("root", "", "directory the paths are relative to")
	list := fl.String("list", "", "file of relative paths, one per line")
	offset := fl.Int64("offset", 0, "first byte to overwrite")
	length := fl.Int64("length", 0, "bytes to overwrite (0: to the end)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *root == "" || *list == "" {
		return errors.New("-root and -list are required")
	}
	lf, err := os.Open(*list)
	if err != nil {
		return err
	}
	defer lf.Close()
	var paths []string
	sc := bufio.NewScanner(lf)
	for sc.Scan() {
		if p := strings.TrimSpace(sc.Text()); p != "" {
			paths = append(paths, p)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, p := range paths {
		name := filepath.Join(*root, filepath.FromSlash(p))
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		n := *length
		if n == 0 || *offset+n > st.Size() {
			n = st.Size() - *offset
		}
		buf := make([]byte, max(n, 0))
		_, _ = rand.Read(buf)
		if _, err := f.WriteAt(buf, *offset); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", name, err)
		}
	}
	fmt.Println(time.Now().UnixNano())
	return nil
}

// ferryJob is the part of `ferry job list --json` that the wait reads.
type ferryJob struct {
	ID       string    `json:"id"`
	Trigger  string    `json:"trigger"`
	Status   string    `json:"status"`
	Error    string    `json:"error"`
	Created  time.Time `json:"created"`
	Ended    time.Time `json:"ended"`
	Counters struct {
		FilesTransferred int64 `json:"files_transferred"`
		FilesUnchanged   int64 `json:"files_unchanged"`
		FilesFailed      int64 `json:"files_failed"`
	} `json:"counters"`
}

// runWaitJob polls `ferry job list --json --plan P` (through the daemon)
// every 50 ms until the jobs of the plan created at or after since are at
// least jobs in number, all finished, and together transferred at least
// files files. It then prints one line: the number of jobs, the files they
// transferred, the Unix time in nanoseconds at which the last one ended,
// their ids, their statuses, and the Unix time in nanoseconds at which the
// first one was created.
func runWaitJob(args []string) error {
	fl := flag.NewFlagSet("waitjob", flag.ContinueOnError)
	ferry := fl.String("ferry", "", "the ferry binary")
	config := fl.String("config", "", "ferry's configuration file")
	plan := fl.String("plan", "", "plan name")
	since := fl.Int64("since", 0, "Unix time in nanoseconds: only jobs created at or after it count")
	jobs := fl.Int("jobs", 1, "finished jobs wanted at least")
	files := fl.Int64("files", 0, "transferred files wanted at least, over those jobs")
	timeout := fl.Duration("timeout", 10*time.Minute, "how long to wait")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *ferry == "" || *config == "" || *plan == "" {
		return errors.New("-ferry, -config and -plan are required")
	}
	start := time.Unix(0, *since)
	deadline := time.Now().Add(*timeout)
	var last string
	for {
		var out, errOut bytes.Buffer
		cmd := exec.Command(*ferry, "--config", *config, "--json", "job", "list", "--plan", *plan, "--limit", "20")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		var list []ferryJob
		if err := cmd.Run(); err != nil {
			last = fmt.Sprintf("ferry job list: %v: %s", err, strings.TrimSpace(errOut.String()))
		} else if err := json.Unmarshal(out.Bytes(), &list); err != nil {
			last = fmt.Sprintf("ferry job list: %v", err)
		} else {
			var (
				n, done  int
				nfiles   int64
				ended    time.Time
				created  time.Time
				ids, sts []string
			)
			for _, j := range list {
				if j.Created.Before(start) {
					continue
				}
				n++
				if created.IsZero() || j.Created.Before(created) {
					created = j.Created
				}
				ids = append(ids, j.ID)
				sts = append(sts, j.Status)
				switch j.Status {
				case "queued", "running":
					continue
				}
				done++
				nfiles += j.Counters.FilesTransferred
				if j.Ended.After(ended) {
					ended = j.Ended
				}
			}
			last = fmt.Sprintf("%d jobs (%s), %d finished, %d files transferred", n, strings.Join(sts, ","), done, nfiles)
			if done == n && done >= *jobs && nfiles >= *files {
				fmt.Printf("%d %d %d %s %s %d\n", done, nfiles, ended.UnixNano(), strings.Join(ids, ","), strings.Join(sts, ","), created.UnixNano())
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("plan %s: no finished job after %s: %s", *plan, *timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
