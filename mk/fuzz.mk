# Fuzzing. The seeds of every fuzz target (f.Add and testdata/fuzz/Fuzz…/) run as ordinary
# tests in `make test`; `make fuzz` fuzzes each target in turn (scripts/fuzz.sh):
#
#   make fuzz                                   every target for 10 minutes, one worker each
#   make fuzz FUZZTIME=30s                      a quick pass
#   make fuzz FUZZ=FuzzChannelToken FUZZPARALLEL=2
#
# It stops at the first crash and prints where go test wrote the failing input.

FUZZTIME     ?= 10m
FUZZPARALLEL ?= 1
FUZZ         ?= .

.PHONY: fuzz
fuzz: go-deps npm-deps
	GO="$(GO)" FUZZTIME="$(FUZZTIME)" FUZZPARALLEL="$(FUZZPARALLEL)" FUZZ="$(FUZZ)" ./scripts/fuzz.sh
