# Atlassian connector: the stand-in binary for the local sandbox (make dev SANDBOX=1).
# It lives under internal/testenv and is never part of the handler.
.PHONY: atlassian-standin
atlassian-standin:
	$(GO) build -o bin/atlassian-standin ./internal/testenv/atlassian/cmd/atlassian-standin

# make dev SANDBOX=1 runs the stand-in next to the handler (scripts/dev.sh): build it first.
dev: $(if $(filter-out 0,$(SANDBOX)),atlassian-standin)
