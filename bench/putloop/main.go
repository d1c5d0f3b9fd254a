// Command putloop is the benchmark's yardstick: the plainest minio-go client
// that puts the same files at the same concurrency as Ferry and rclone, so
// its speed marks the practical limit of this machine and MinIO server.
// bench/run.sh also uses its helper subcommands to make test data, find a
// free port, wait for the server, make buckets and check what arrived.
//
//	putloop gen      -dir D [-dirs 100] [-files 100] [-size 4096]
//	putloop freeport
//	putloop wait     -endpoint HOST:PORT [-timeout 60s]
//	putloop mb       -endpoint HOST:PORT BUCKET...
//	putloop put      -endpoint HOST:PORT -bucket B [-prefix P] -dir D [-concurrency 8]
//	putloop putfile  -endpoint HOST:PORT -bucket B -key K -file F [-part-size-mib 16] [-concurrency 8]
//	putloop count    -endpoint HOST:PORT -bucket B [-prefix P]
//	putloop get      -endpoint HOST:PORT -bucket B -key K
//	putloop waitcount -endpoint HOST:PORT -bucket B [-prefix P] -count N -bytes N [-timeout 10m]
//	putloop modify   -root D -list FILE [-offset 0] [-length 0]
//	putloop waitjob  -ferry BIN -config CFG -plan P -since UNIXNANO [-jobs 1] [-files 0] [-timeout 10m]
//
// The access and secret keys come from PUTLOOP_ACCESS_KEY and
// PUTLOOP_SECRET_KEY. Only plain http on loopback is used.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: putloop gen|freeport|wait|mb|put|putfile|count|get|waitcount|modify|waitjob [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "gen":
		err = runGen(args)
	case "freeport":
		err = runFreePort()
	case "wait":
		err = runWait(args)
	case "mb":
		err = runMakeBuckets(args)
	case "put":
		err = runPut(args)
	case "putfile":
		err = runPutFile(args)
	case "count":
		err = runCount(args)
	case "get":
		err = runGet(args)
	case "waitcount":
		err = runWaitCount(args)
	case "modify":
		err = runModify(args)
	case "waitjob":
		err = runWaitJob(args)
	default:
		err = fmt.Errorf("unknown subcommand %q (valid: gen, freeport, wait, mb, put, putfile, count, get, waitcount, modify, waitjob)", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "putloop %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

// runGen writes dirs×files files of size random bytes under dir, in
// directories d000/sub/ so the tree is nested two levels deep.
func runGen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fl.String("dir", "", "directory to fill (created)")
	dirs := fl.Int("dirs", 100, "number of directories")
	files := fl.Int("files", 100, "files per directory")
	size := fl.Int("size", 4096, "bytes per file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	rng := rand.New(rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'}))
	buf := make([]byte, *size)
	for d := range *dirs {
		sub := filepath.Join(*dir, fmt.Sprintf("d%03d", d), "sub")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for f := range *files {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d.bin", f)), buf, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func runFreePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// runWait polls MinIO's readiness endpoint until it answers 200.
func runWait(args []string) error {
	fl := flag.NewFlagSet("wait", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	timeout := fl.Duration("timeout", 60*time.Second, "how long to wait")
	if err := fl.Parse(args); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get("http://" + *endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", *endpoint, *timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func client(endpoint string) (*minio.Client, error) {
	if endpoint == "" {
		return nil, errors.New("-endpoint is required")
	}
	return minio.New(endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("PUTLOOP_ACCESS_KEY"), os.Getenv("PUTLOOP_SECRET_KEY"), ""),
		Region: "us-east-1",
	})
}

func runMakeBuckets(args []string) error {
	fl := flag.NewFlagSet("mb", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	for _, b := range fl.Args() {
		if err := c.MakeBucket(context.Background(), b, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
	}
	return nil
}

// runPut is the loop being measured: walk dir, and put every regular file
// with concurrency workers, each a plain PutObject with default options.
func runPut(args []string) error {
	fl := flag.NewFlagSet("put", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	bucket := fl.String("bucket", "", "bucket")
	prefix := fl.String("prefix", "", "key prefix, e.g. run1/")
	dir := fl.String("dir", "", "directory to upload")
	conc := fl.Int("concurrency", 8, "PUTs in flight")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	ctx := context.Background()
	paths := make(chan string, *conc*4)
	var (
		wg       sync.WaitGroup
		n, bytes atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	for range *conc {
		wg.Go(func() {
			for p := range paths {
				if err := putOne(ctx, c, *bucket, *prefix, *dir, p, &bytes); err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				n.Add(1)
			}
		})
	}
	walkErr := filepath.WalkDir(*dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths <- p
		}
		return nil
	})
	close(paths)
	wg.Wait()
	if err := errors.Join(walkErr, firstErr); err != nil {
		return err
	}
	fmt.Printf("put %d files, %d bytes\n", n.Load(), bytes.Load())
	return nil
}

func putOne(ctx context.Context, c *minio.Client, bucket, prefix, root, p string, bytes *atomic.Int64) error {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	info, err := c.PutObject(ctx, bucket, prefix+filepath.ToSlash(rel), f, st.Size(), minio.PutObjectOptions{})
	if err != nil {
		return fmt.Errorf("put %s: %w", rel, err)
	}
	bytes.Add(info.Size)
	return nil
}

// runPutFile puts one file with minio-go's own multipart upload: parts of
// part-size bytes, concurrency parts in flight.
func runPutFile(args []string) error {
	fl := flag.NewFlagSet("putfile", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	bucket := fl.String("bucket", "", "bucket")
	key := fl.String("key", "", "object key")
	file := fl.String("file", "", "file to upload")
	partMiB := fl.Uint64("part-size-mib", 16, "part size in MiB")
	conc := fl.Uint("concurrency", 8, "parts in flight")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	info, err := c.PutObject(context.Background(), *bucket, *key, f, st.Size(), minio.PutObjectOptions{
		PartSize:   *partMiB << 20,
		NumThreads: *conc,
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", *key, err)
	}
	fmt.Printf("put 1 file, %d bytes\n", info.Size)
	return nil
}

// runCount prints the number of objects and their total size under prefix.
func runCount(args []string) error {
	fl := flag.NewFlagSet("count", flag.ContinueOnError)
	endpoint := fl.String("endpoint", "", "HOST:PORT")
	bucket := fl.String("bucket", "", "bucket")
	prefix := fl.String("prefix", "", "key prefix")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c, err := client(*endpoint)
	if err != nil {
		return err
	}
	n, size, err := countObjects(context.Background(), c, *bucket, *prefix)
	if err != nil {
		return err
	}
	fmt.Println(strconv.FormatInt(n, 10), strconv.FormatInt(size, 10))
	return nil
}
