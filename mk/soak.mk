# Soak with faults: three handler processes (a soak build: go build -tags soak) sharing one
# Azurite, simulated Teams users signing in and asking, while a fault schedule drawn from
# SOAK_SEED stops Azurite, throttles and fails Entra, the token service, Atlassian and the
# connector, kills instances with kill -9, takes Key Vault (which holds the token-store key)
# down while an instance restarts, and skews one instance's clock. It stops by itself and
# prints a summary of checks; it fails if any check fails. `make test` runs a short version
# (internal/soak, 40 s of load, 30 users).
#
#   make soak                                     10 minutes, 300 users
#   make soak SOAK_DURATION=3m SOAK_USERS=100 SOAK_SEED=7
#
# The summary is also written to $(SOAK_SUMMARY); the handlers' logs are kept in $(SOAK_LOGDIR).

SOAK_DURATION ?= 10m
SOAK_USERS    ?= 300
SOAK_WORKERS  ?= 10
SOAK_SEED     ?= 1
SOAK_SUMMARY  ?= soak-summary.md
SOAK_LOGDIR   ?= $(CURDIR)/.soak

.PHONY: soak
soak: npm-deps
	rm -rf $(SOAK_LOGDIR)
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" SOAK_DURATION=$(SOAK_DURATION) SOAK_USERS=$(SOAK_USERS) SOAK_WORKERS=$(SOAK_WORKERS) \
		SOAK_SEED=$(SOAK_SEED) SOAK_SUMMARY=$(CURDIR)/$(SOAK_SUMMARY) SOAK_LOGDIR=$(SOAK_LOGDIR) \
		$(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./internal/soak/
