# Atlassian connector: the stand-in binary for the local sandbox (make dev).
# It lives under internal/testenv and is never part of the handler.
.PHONY: atlassian-standin
atlassian-standin:
	$(GO) build -o bin/atlassian-standin ./internal/testenv/atlassian/cmd/atlassian-standin


# Targeted tests of the OAuth connectors: units, then the end-to-end tests (Azurite from
# node_modules, the channel, Entra and Atlassian stand-ins; about 10 s).
.PHONY: test-atlassian
test-atlassian: npm-deps
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -count=1 ./internal/connector/oauth2/... ./internal/connector/atlassian/... \
		./internal/oauthlink/... ./internal/secrets/... ./internal/testenv/atlassian/...
	PATH="$(CURDIR)/$(NPM_BIN):$$PATH" $(GO) test -count=1 -run 'TestAtlassian|TestGenericConnector' ./internal/app/
