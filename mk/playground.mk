# Microsoft 365 Agents Playground (npm @microsoft/m365agentsplayground, pinned in package.json).
#
#   make playground [PLAYGROUND_ARGS='-p 56150 http://127.0.0.1:3978/api/messages']
#       run it in the foreground against the bot (scripts/playground.sh --help lists the flags)
#   make playground-say [MSG=help] [PLAYGROUND_URL=http://127.0.0.1:56150]
#       type MSG into a running Playground and print the bot's replies (exit 1 if none)
#
# The end-to-end tests drive it through internal/testenv/playground (no browser needed);
# `make test` already installs it through npm-deps and puts node_modules/.bin on PATH.

PLAYGROUND_ARGS ?=
PLAYGROUND_URL  ?= http://127.0.0.1:56150
MSG             ?= help

.PHONY: playground playground-say
playground: npm-deps
	./scripts/playground.sh $(PLAYGROUND_ARGS)

playground-say:
	$(GO) run ./internal/testenv/playground/cmd/playground-say -url '$(PLAYGROUND_URL)' $(MSG)
