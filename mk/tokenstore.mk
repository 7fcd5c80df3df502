# Token store: targeted tests and benchmarks (Azurite from node_modules, started by the tests).
.PHONY: test-tokenstore bench-tokenstore

TOKENSTORE_PKGS := ./internal/seal/... ./internal/keyring/... ./internal/tokenstore/... \
	./internal/testenv/azurite/... ./internal/testenv/keyvault/... ./internal/testenv/rotatingissuer/...

test-tokenstore: npm-deps
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -count=1 $(TOKENSTORE_PKGS)

bench-tokenstore: npm-deps
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -run '^$$' -bench . -benchtime=2s ./internal/seal/ ./internal/tokenstore/
