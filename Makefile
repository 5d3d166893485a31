# arbo's builds. `make test` is the README's test command; `make dist`
# builds the release binaries, static and stamped with the commit they come
# from (arbo version prints it), with a SHA256SUMS file beside them.

GO        ?= go
PLATFORMS ?= freebsd/amd64 freebsd/arm64 linux/amd64 darwin/arm64
DIST      ?= dist

# -trimpath: no build paths in the binary; -buildvcs=true: the revision,
# its time and whether the tree was modified (and, from Go 1.24, a version
# derived from the tag) are stamped in; -s -w: no symbol tables.
# Same commit, same Go: same bytes.
BUILDFLAGS := -trimpath -buildvcs=true
LDFLAGS    := -s -w

.PHONY: all build test dist clean

all: build

build:
	$(GO) build -buildvcs=true -o arbo ./cmd/arbo

test:
	$(GO) test -count=1 -timeout 30m ./...

dist:
	rm -rf $(DIST)
	mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "build $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) -ldflags='$(LDFLAGS)' \
			-o $(DIST)/arbo-$$os-$$arch ./cmd/arbo; \
	done
	cd $(DIST) && sha256sum arbo-* > SHA256SUMS
	cat $(DIST)/SHA256SUMS

clean:
	rm -rf $(DIST) arbo
