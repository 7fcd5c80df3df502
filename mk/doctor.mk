# onbehalf doctor: find SSO and identity misconfigurations in a deployment and say how to fix them.
#
#   make doctor                      live, from the azd environment (azd env get-values)
#   make doctor DOCTOR_ARGS="--subscription ID --resource-group RG --bot-name BOT [--fix]"
#   make doctor DOCTOR_ARGS="--app app.json --bot bot.json --connection connection.json --manifest manifest.json"
#
# See the doctor section of README.md. Exit status 1 when a check fails.

DOCTOR_ARGS ?=

.PHONY: doctor
doctor:
	@args='$(DOCTOR_ARGS)'; \
	if [ -z "$$args" ] && command -v azd >/dev/null 2>&1 && vals="$$(azd env get-values 2>/dev/null)"; then \
	  eval "$$vals"; \
	  args="--subscription $$AZURE_SUBSCRIPTION_ID --resource-group $$AZURE_RESOURCE_GROUP --bot-name $$BOT_NAME --function-app $$FUNCTION_APP_NAME"; \
	fi; \
	$(GO) run ./handler doctor $$args
