#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after another, each for FUZZTIME.
#
#   FUZZTIME      how long each target runs (go test -fuzztime: 10m, 30s, 5000x); default 10m
#   FUZZPARALLEL  fuzzing workers per target (go test -parallel); default 1
#   FUZZ          only targets whose name matches this extended regular expression
#
# Targets are found from the code: the packages whose tests declare a func Fuzz…, asked for
# their targets with `go test -list '^Fuzz'`. The first crash stops the run; the path of the
# input go test wrote under the package's testdata/fuzz/ is printed (commit it as a regression
# seed once the bug is fixed). Needs node_modules/.bin on PATH for targets that use Azurite.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10m}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZ=${FUZZ:-.}
export PATH="$PWD/node_modules/.bin:$PATH"

mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Z0-9_][A-Za-z0-9_]*\(f \*testing\.F\)' internal handler 2>/dev/null | xargs -r -n1 dirname | sort -u)
targets=()
for dir in "${pkgs[@]}"; do
	while read -r name; do
		[[ $name == Fuzz* ]] || continue
		[[ $name =~ $FUZZ ]] || continue
		targets+=("./$dir $name")
	done < <($GO test -list '^Fuzz' "./$dir" 2>/dev/null)
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no target matches '$FUZZ'" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each, -parallel $FUZZPARALLEL"
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "fuzz: $name ($pkg)"
	out=$(mktemp)
	if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$pkg" 2>&1 | tee "$out"; then
		crash=$(grep -oE 'testdata/fuzz/[^ ]+' "$out" | head -1 || true)
		rm -f "$out"
		if [ -n "$crash" ]; then
			echo "fuzz: $name crashed; the failing input is $pkg/$crash" >&2
			echo "fuzz: replay it with: $GO test -run '^${name}\$/$(basename "$crash")\$' $pkg" >&2
		else
			echo "fuzz: $name failed (no input file was written; see the output above)" >&2
		fi
		exit 1
	fi
	rm -f "$out"
done
echo "fuzz: all ${#targets[@]} targets ran for $FUZZTIME without a crash"
