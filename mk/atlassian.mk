# Atlassian connector: the stand-in binary for the local sandbox (make dev SANDBOX=1).
# It lives under internal/testenv and is never part of the handler.
.PHONY: atlassian-standin
atlassian-standin:
	$(GO) build -o bin/atlassian-standin ./internal/testenv/atlassian/cmd/atlassian-standin
