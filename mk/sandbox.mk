# The local sandbox (make dev): the Microsoft stand-ins and the channel bridge the Agents
# Playground talks to, as a binary built from internal/testenv (never part of the handler).
#
#   make dev               the full sandbox: Alice on http://127.0.0.1:56150, Bob on :56151
#   make dev ANONYMOUS=1   the bare handler in anonymous mode, one Playground, no stand-ins
ANONYMOUS ?=

.PHONY: sandbox-standin
sandbox-standin:
	$(GO) build -o bin/sandbox-standin ./internal/testenv/sandbox/cmd/sandbox-standin

# The Functions host's part for the queue and timer functions (functions/work, functions/purge).
.PHONY: funchost
funchost:
	$(GO) build -o bin/funchost ./internal/testenv/funchost/cmd/funchost

dev: $(if $(filter-out 0,$(ANONYMOUS)),,atlassian-standin sandbox-standin ldap-standin) funchost
