# onbehalf — build, run and test.
#
#   make dev    run the whole product locally as the sandbox users Alice and Bob, in two Agents
#               Playgrounds (make dev ANONYMOUS=1: the bare handler in anonymous mode)
#   make test   install what the tests need, then go vet and every test
#
# Other targets: build, dist, bench, clean. Area-specific targets live in mk/*.mk.

SHELL        := /usr/bin/env bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
BIN          := bin/onbehalf
DIST         := dist/app
NPM_BIN      := node_modules/.bin
# Debian packages the tests need; mk/*.mk fragments append to this list.
APT_PACKAGES :=
# Extra prerequisites of `make test`; mk/*.mk fragments append to this list.
TEST_DEPS    :=

.PHONY: all build dist dev test deps npm-deps apt-deps go-deps vet bench clean
all: build

include $(wildcard mk/*.mk)

build: go-deps
	$(GO) build -o $(BIN) ./handler

# The deployable folder used by both `func start --script-root dist/app` and `azd deploy`:
# host.json, one folder per function, and a static linux/amd64 binary — nothing else.
dist:
	rm -rf $(DIST)
	mkdir -p $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='-s -w' -o $(DIST)/onbehalf ./handler
	cp host.json $(DIST)/
	for f in functions/*/; do mkdir -p $(DIST)/$$(basename $$f); cp $$f/function.json $(DIST)/$$(basename $$f)/; done

deps: go-deps npm-deps apt-deps

go-deps:
	$(GO) mod download

npm-deps: node_modules/.installed
# A node_modules that is a symbolic link is shared with another checkout: npm ci would empty
# the link's target under whoever else uses it, so only check that it is complete.
node_modules/.installed: package.json package-lock.json
	@if [ -L node_modules ]; then \
	  for b in azurite agentsplayground; do [ -x node_modules/.bin/$$b ] || { echo "node_modules is a link to an incomplete install (no $$b): run npm ci where it points" >&2; exit 1; }; done; \
	else \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	fi

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

vet:
	$(GO) vet ./...

test: deps $(TEST_DEPS)
	$(GO) vet ./...
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -count=1 -timeout 20m ./...

dev: build npm-deps
	./scripts/dev.sh

bench: build
	$(GO) run ./bench

clean:
	rm -rf bin dist .dev
