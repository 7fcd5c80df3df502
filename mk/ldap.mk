# LDAP connector: a real OpenLDAP slapd for the tests (Debian packages slapd and ldap-utils,
# installed by `make apt-deps`; the tests start slapd themselves on free loopback ports and stop it).
#
#   make test-ldap    the connector's tests, the slapd stand-up and the end-to-end LDAP tests
#   make bench-ldap   warm `directory` latency and connections opened per 100 lookups
#   make ldap-standin the test directory for make dev (see below)

APT_PACKAGES += slapd ldap-utils

.PHONY: test-ldap bench-ldap
test-ldap: apt-deps npm-deps
	$(GO) test -count=1 ./internal/connector/ldap/... ./internal/testenv/slapd/...
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -count=1 -run 'TestLDAP' ./internal/app/

bench-ldap: apt-deps
	$(GO) test -count=1 -run '^$$' -bench DirectoryLookup -benchtime 1000x -count 3 ./internal/connector/ldap/

# The test directory for local development: bin/ldap-standin -env .dev/ldap.env runs slapd and
# writes the handler's LDAP_* settings (source them before starting the handler).
.PHONY: ldap-standin
ldap-standin: apt-deps
	$(GO) build -o bin/ldap-standin ./internal/testenv/slapd/cmd/ldap-standin
