package fusefs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/state"
)

// Kernel cache timeouts of the remote view: short, because other programs
// may change the store. Changes made through the mount invalidate the
// kernel's entries themselves.
const (
	remoteAttrTimeout     = time.Second
	remoteEntryTimeout    = time.Second
	remoteNegativeTimeout = time.Second
)

// DefaultListTTL is how long a directory listing is served from the cache
// before the store is listed again.
const DefaultListTTL = 10 * time.Second

// maxRequest is the largest read or write the kernel sends in one request.
const maxRequest = 1 << 20

// remoteReadAheadKB is the kernel read-ahead asked for the remote view.
// FUSE mounts start at 128 KiB, which makes a sequential read a chain of
// 128 KiB requests, each waiting for the one before; 4 MiB lets the kernel
// ask for up to maxRequest at a time and keep several in the queue.
const remoteReadAheadKB = 4096

// Options configure a mount.
type Options struct {
	// ReadOnly refuses every change (EROFS).
	ReadOnly bool
	// AllowOther lets other users see the mount (fusermount needs
	// user_allow_other in /etc/fuse.conf for that unless it runs as root).
	// The kernel then checks permissions itself (default_permissions), so
	// others get the shown modes: they can read but not write.
	AllowOther bool
	// CacheDir holds the spool files of files being written; each mount
	// makes its own directory in it and removes it at unmount. "" means
	// os.TempDir().
	CacheDir string
	// ListTTL is how long a directory listing is served from the cache.
	// 0 means DefaultListTTL.
	ListTTL time.Duration
	// DB, when set, keeps directory listings across mounts, in the record
	// namespace "mountcache/<CacheID>".
	DB *state.DB
	// CacheID names this mount's cache in DB, e.g. the remote and prefix
	// shown. Required with DB; two mounts of the same place may share it.
	CacheID string
	// Logger receives the mount's messages; nil discards them.
	Logger *slog.Logger
	// Context is used for uploads and listings, which must not end with the
	// FUSE request that started them: a file closed by an interrupted
	// program is still uploaded. Canceling it fails those operations. nil
	// means the mount call's context without its cancellation.
	Context context.Context
	// Source is shown as the file system's source in /proc/mounts and df,
	// e.g. "s3a:photos". "" means "ferry".
	Source string
}

// Mount is a mounted view. Unmount ends it; Wait and Done tell when it has
// ended, however that happened (Unmount, `ferry umount`, fusermount -u).
type Mount struct {
	mountpoint string
	server     *fuse.Server
	log        *slog.Logger
	done       chan struct{}
	unmountMu  sync.Mutex
}

// Mountpoint returns the absolute directory the view is mounted on.
func (m *Mount) Mountpoint() string { return m.mountpoint }

// Wait blocks until the mount has ended and its cleanup (uploads still in
// flight, storing the listing cache, removing spool files) is done.
func (m *Mount) Wait() { <-m.done }

// Done is closed when Wait would return.
func (m *Mount) Done() <-chan struct{} { return m.done }

// Unmount unmounts the view and waits until it has ended. When the mount
// is busy (a program has a file open or its working directory in it), it
// falls back to a lazy unmount (fusermount3 -u -z): the mount leaves the
// file system tree at once and ends when the last program lets go of it;
// Unmount then returns without waiting, and Wait or Done tell the end.
func (m *Mount) Unmount() error {
	m.unmountMu.Lock()
	defer m.unmountMu.Unlock()
	select {
	case <-m.done:
		return nil
	default:
	}
	err := m.server.Unmount()
	if err == nil {
		<-m.done
		return nil
	}
	select {
	case <-m.done: // it went away meanwhile
		return nil
	default:
	}
	if lerr := fusermount(m.mountpoint, true); lerr != nil {
		return fmt.Errorf("unmount %s: %v; lazy unmount: %w", m.mountpoint, err, lerr)
	}
	m.log.Warn("mount was busy; unmounted lazily, it ends when the last program using it lets go",
		slog.String("mountpoint", m.mountpoint), slog.Any("err", err))
	return nil
}

// MountRemote mounts store on mountpoint as the remote view (see the
// package documentation) and returns once the mount is ready. ctx bounds
// the setup, which lists the root directory (from the cache when it is
// fresh) so that an unreachable store fails here.
func MountRemote(ctx context.Context, mountpoint string, store remote.Store, opts Options) (*Mount, error) {
	if opts.DB != nil && opts.CacheID == "" {
		return nil, errors.New("mount: Options.CacheID is required with Options.DB (it names the listing cache, e.g. the remote and prefix)")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bg := opts.Context
	if bg == nil {
		bg = context.WithoutCancel(ctx)
	}
	ttl := opts.ListTTL
	if ttl <= 0 {
		ttl = DefaultListTTL
	}
	mp, err := checkMountpoint(mountpoint)
	if err != nil {
		return nil, err
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = os.TempDir()
	}
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("mount %s: cache directory: %w", mp, err)
	}
	spoolDir, err := os.MkdirTemp(cacheDir, "ferry-spool-")
	if err != nil {
		return nil, fmt.Errorf("mount %s: cache directory: %w", mp, err)
	}

	fsys := &remoteFS{
		store:    store,
		bg:       bg,
		log:      log,
		readOnly: opts.ReadOnly,
		spoolDir: spoolDir,
		uid:      uint32(os.Getuid()),
		gid:      uint32(os.Getgid()),
		mounted:  time.Now(),
		ttl:      ttl,
		pending:  make(map[string]map[string]bool),
	}
	fsys.cache = newListCache(store, ttl, opts.DB, "mountcache/"+opts.CacheID, log, bg)
	if _, err := fsys.cache.get(ctx, ""); err != nil {
		os.RemoveAll(spoolDir)
		return nil, fmt.Errorf("mount %s: %w", mp, err)
	}
	root := &dirNode{node: node{fsys: fsys}}

	attr, entry, negative := remoteAttrTimeout, remoteEntryTimeout, remoteNegativeTimeout
	fsOpts := &fs.Options{
		AttrTimeout:     &attr,
		EntryTimeout:    &entry,
		NegativeTimeout: &negative,
		UID:             fsys.uid,
		GID:             fsys.gid,
	}
	fsOpts.MountOptions = mountOptions(opts, log)
	fsOpts.MountOptions.SyncRead = true // ordered reads keep one ranged GET streaming
	fsOpts.MountOptions.MaxReadAhead = maxRequest
	fsOpts.Logger = slog.NewLogLogger(log.Handler(), slog.LevelWarn)

	return mount(mp, root, fsOpts, remoteReadAheadKB, log, func() {
		fsys.uploads.Wait()
		fsys.cache.flush()
		if err := os.RemoveAll(spoolDir); err != nil {
			log.Warn("remove spool directory", slog.String("dir", spoolDir), slog.Any("err", err))
		}
	}, func() { os.RemoveAll(spoolDir) })
}

// mountOptions are the FUSE mount options every view shares.
func mountOptions(opts Options, log *slog.Logger) fuse.MountOptions {
	source := opts.Source
	if source == "" {
		source = "ferry"
	}
	mo := fuse.MountOptions{
		FsName:        source,
		Name:          "ferry",
		AllowOther:    opts.AllowOther,
		MaxWrite:      maxRequest,
		DisableXAttrs: true,
		// Replies are built in memory; splicing them through a pipe only
		// adds copies (and fails for 1 MiB replies, over the pipe size).
		DisableSplice: true,
		Logger:        slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if opts.AllowOther {
		mo.Options = append(mo.Options, "default_permissions")
	}
	if opts.ReadOnly {
		mo.Options = append(mo.Options, "ro")
	}
	return mo
}

// mount serves root on mountpoint, with readAheadKB of kernel read-ahead
// when the process may set it (0: the kernel's default). cleanup runs once
// the server has stopped; abort runs when mounting fails.
func mount(mountpoint string, root fs.InodeEmbedder, opts *fs.Options, readAheadKB int, log *slog.Logger, cleanup, abort func()) (*Mount, error) {
	server, err := fs.Mount(mountpoint, root, opts)
	if err != nil {
		abort()
		return nil, fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	if readAheadKB > 0 {
		if err := setReadAhead(mountpoint, readAheadKB); err != nil {
			log.Debug("kernel read-ahead left at its default", slog.String("mountpoint", mountpoint), slog.Any("err", err))
		}
	}
	m := &Mount{mountpoint: mountpoint, server: server, log: log, done: make(chan struct{})}
	go func() {
		server.Wait()
		cleanup()
		close(m.done)
	}()
	return m, nil
}

// setReadAhead sets the read-ahead of the file system mounted on
// mountpoint, through its backing device's sysfs entry. Writing it needs
// root (or a sysfs made writable for the user).
func setReadAhead(mountpoint string, kb int) error {
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err != nil {
		return fmt.Errorf("stat %s: %w", mountpoint, err)
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(kb)), 0); err != nil {
		return fmt.Errorf("set read-ahead: %w", err)
	}
	return nil
}

// checkMountpoint returns the absolute form of mountpoint after checking
// that it is a directory one can mount on.
func checkMountpoint(mountpoint string) (string, error) {
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", mountpoint, err)
	}
	fi, err := os.Stat(mp)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return "", fmt.Errorf("mountpoint %s holds a dead FUSE mount (transport endpoint is not connected); unmount it first with `ferry umount %s`", mp, mp)
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("mountpoint %s does not exist; create the directory first", mp)
	case err != nil:
		return "", fmt.Errorf("mountpoint %s: %w", mp, err)
	case !fi.IsDir():
		return "", fmt.Errorf("mountpoint %s is not a directory", mp)
	}
	return mp, nil
}

// ErrNotMounted: there is no FUSE mount at the path given to Unmount.
var ErrNotMounted = errors.New("no FUSE mount there")

// Unmount unmounts the FUSE mount at mountpoint, whichever process serves
// it, with fusermount3 -u; when the mount is busy it falls back to a lazy
// unmount (-z) and reports lazy == true: the mount has left the tree and
// ends when the last program using it lets go. A path with no FUSE mount
// gives an error wrapping ErrNotMounted.
func Unmount(mountpoint string) (lazy bool, err error) {
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return false, fmt.Errorf("unmount %s: %w", mountpoint, err)
	}
	mounts, err := FuseMounts()
	if err != nil {
		return false, fmt.Errorf("unmount %s: %w", mp, err)
	}
	found := false
	for _, m := range mounts {
		found = found || m == mp
	}
	if !found {
		return false, fmt.Errorf("unmount %s: %w", mp, ErrNotMounted)
	}
	if err := fusermount(mp, false); err == nil {
		return false, nil
	} else if lerr := fusermount(mp, true); lerr != nil {
		return false, fmt.Errorf("unmount %s: %v; lazy unmount: %w", mp, err, lerr)
	}
	return true, nil
}

// fusermount runs fusermount3 (or fusermount) -u, with -z when lazy.
func fusermount(mountpoint string, lazy bool) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return errors.New("neither fusermount3 nor fusermount is installed (install the fuse3 package)")
		}
	}
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	args = append(args, "--", mountpoint)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %s", filepath.Base(bin), msg)
		}
		return fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	return nil
}

// FuseMounts returns the mount points of the FUSE file systems in
// /proc/mounts.
func FuseMounts() ([]string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var out []string
	for _, m := range parseMounts(f) {
		if m.fsType == "fuse" || strings.HasPrefix(m.fsType, "fuse.") {
			out = append(out, m.mountpoint)
		}
	}
	return out, nil
}

type mountEntry struct {
	source, mountpoint, fsType string
}

// parseMounts reads the /proc/mounts format: one mount per line, fields
// separated by spaces, with space, tab, newline and backslash in a field
// written as octal escapes (\040). Lines with fewer than three fields are
// skipped.
func parseMounts(r io.Reader) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		out = append(out, mountEntry{
			source:     unescapeMountField(fields[0]),
			mountpoint: unescapeMountField(fields[1]),
			fsType:     unescapeMountField(fields[2]),
		})
	}
	return out
}

// unescapeMountField undoes the kernel's octal escapes (\ooo).
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
