# Infrastructure checks and the Teams app package.
#
#   make bicep-check     parse every .bicep file under infra/ (run by `make test`)
#   make teams-package   write appPackage/build/onbehalf-<env>.zip from the azd environment
#   make teams-icons     regenerate appPackage/color.png and appPackage/outline.png

BICEP_CHECK_DIR := tools/bicep-check
TEST_DEPS       += bicep-check

.PHONY: bicep-check teams-package teams-icons

# --ignore-scripts: the grammar's native addon is not needed; the checker loads its .wasm.
$(BICEP_CHECK_DIR)/node_modules/.installed: $(BICEP_CHECK_DIR)/package.json $(BICEP_CHECK_DIR)/package-lock.json
	cd $(BICEP_CHECK_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

bicep-check: $(BICEP_CHECK_DIR)/node_modules/.installed
	node $(BICEP_CHECK_DIR)/check.mjs infra

teams-package:
	./scripts/package-teams-app.sh

teams-icons:
	$(GO) run ./tools/teamsapp icons -dir appPackage
