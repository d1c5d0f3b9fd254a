# Ferry's build. `make test` is the one command that runs every test; it
# installs what the tests need (a pinned MinIO server, cached outside the
# clone in $(go env GOPATH)/bin) first.

GO        ?= go
PREFIX    ?= /usr/local
DESTDIR   ?=
GOBIN     := $(shell $(GO) env GOPATH)/bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOTESTSUM := $(GOBIN)/gotestsum
GOTESTSUM_VERSION := v1.13.0
# Test output: one line per test, failures in full, a summary at the end.
TESTFMT   := --format testname --format-hide-empty-pkg

.PHONY: all deps verify-units build test test-short race lint fmt vet install clean minio tools demo bench

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ferry ./cmd/ferry

# Everything, including the S3 conformance suite against a real MinIO server.
test: minio deps tools
	FERRY_MINIO_BIN=$(GOBIN)/minio $(GOTESTSUM) $(TESTFMT) -- -count=1 -timeout 30m ./...

# Unit tests only: no external servers (tests that need MinIO skip).
test-short: tools
	$(GOTESTSUM) $(TESTFMT) -- -short -count=1 ./...

race: minio deps tools
	FERRY_MINIO_BIN=$(GOBIN)/minio $(GOTESTSUM) $(TESTFMT) -- -race -count=1 -timeout 45m ./...

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

minio:
	@scripts/install-minio.sh >/dev/null

# System packages the tests use (fuse3, rsync), from Debian when missing.
deps:
	@scripts/install-test-deps.sh

tools: $(GOTESTSUM)

$(GOTESTSUM):
	$(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

# The quick start: sample files, two plans, the jobs and their lists.
demo:
	@scripts/demo.sh

# Ferry against its peers (rclone, restic, rclone mount, a bare minio-go
# client) on local MinIO servers, scenarios (a)-(f) of bench/RESULTS.md;
# appends the tables there. Choose scenarios with BENCH_ONLY="d e" (or
# bench/run.sh d e); all of them take about 17 minutes.
bench:
	@bench/run.sh $(BENCH_ONLY)

SYSCONFDIR ?= /etc
BINDIR     := $(PREFIX)/bin
DOCDIR     := $(PREFIX)/share/doc/ferry
UNITDIR    ?= $(SYSCONFDIR)/systemd/system
SUBST      := sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

# Installs the binary, the systemd unit, tmpfiles.d and sysusers.d entries, an
# example configuration and the docs. Honours DESTDIR, PREFIX and SYSCONFDIR.
install: build
	install -D -m 0755 bin/ferry $(DESTDIR)$(BINDIR)/ferry
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	$(SUBST) systemd/ferry.service > $(DESTDIR)$(UNITDIR)/ferry.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ferry.service
	install -D -m 0644 systemd/ferry.tmpfiles.conf $(DESTDIR)$(SYSCONFDIR)/tmpfiles.d/ferry.conf
	install -D -m 0644 systemd/ferry.sysusers.conf $(DESTDIR)$(SYSCONFDIR)/sysusers.d/ferry.conf
	install -D -m 0640 examples/full.toml $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.toml.example
	install -d -m 0755 $(DESTDIR)$(DOCDIR)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

# systemd-analyze verify on the unit as `make install` renders it.
verify-units: build
	@scripts/verify-units.sh

clean:
	rm -rf bin
	$(GO) clean -testcache
