# Confab: `make run` to try it, `make test` to test it. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
# What uvicorn allows against slow or huge request heads: heads within
# CONFAB_HTTP_HEADER_TIMEOUT / CONFAB_HTTP_MAX_HEADER_BYTES (backend/http_protocol.py),
# idle kept-alive connections closed after 5 s (docs/deploy.md).
UVICORN_LIMITS := --http backend.http_protocol:HeadLimitedHttpToolsProtocol --timeout-keep-alive 5
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install run test test-fast lint format openapi check-openapi schema check-schema contracts \
        sdk ts-types vendor check-vendor recover bench bench-history bench-streaming bench-turn \
        bench-throughput bench-attachments clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## run: migrate, print a demo token, serve on http://127.0.0.1:$(PORT) (SQLite + demo model by default)
run: install
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(BIN)/python manage.py ensure_demo_user --port $(PORT)
	DEBUG=$${DEBUG:-1} $(BIN)/uvicorn backend.asgi:application --host 127.0.0.1 --port $(PORT) \
		--ws-per-message-deflate false $(UVICORN_LIMITS)

## test: the whole suite (PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set)
test: install
	$(BIN)/pytest

## test-fast: everyday work: all but the e2e, reliability and scale tiers (a few minutes)
test-fast: install
	$(BIN)/pytest -m "not e2e and not reliability and not scale"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## openapi: regenerate openapi.yaml from the code (validated, warnings are errors)
openapi: install
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py spectacular \
		--file openapi.yaml --validate --fail-on-warn

check-openapi: install
	@mkdir -p build
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py spectacular \
		--file build/openapi.check.yaml --validate --fail-on-warn
	@diff -u openapi.yaml build/openapi.check.yaml \
		|| (echo "openapi.yaml is stale: run make openapi" && exit 1)

## schema: export schema.graphql from the code
schema: install
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py export_schema \
		api.graphql.schema:schema --path schema.graphql

check-schema: install
	@mkdir -p build
	DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py export_schema \
		api.graphql.schema:schema --path build/schema.check.graphql
	@diff -u schema.graphql build/schema.check.graphql \
		|| (echo "schema.graphql is stale: run make schema" && exit 1)

contracts: check-openapi check-schema check-vendor

## vendor: the web app's third-party files (docs/web.md): graphql-ws's browser build, and
## the Markdown renderer's markdown-it, DOMPurify and highlight.js. Each pinned package
## tarball comes from the npm registry and must match its SHA-256; the files taken from
## them are checked against the committed SHA256SUMS, then copied into the app
## (committed; `make run` needs no npm)
GRAPHQL_WS_VERSION := 6.4.2
GRAPHQL_WS_TARBALL_SHA256 := 14516ff4e3feaeded14bd2fcad590276656e8f3b3cc427bfd63e21fa04d4f53c
MARKDOWN_IT_VERSION := 14.1.0
MARKDOWN_IT_TARBALL_SHA256 := 7c4fab4d4d39fe98206a7fbbed4b1e3578f2b70b6b69d309413e33eec140e19f
DOMPURIFY_VERSION := 3.5.0
DOMPURIFY_TARBALL_SHA256 := faa5f2bfe2814384b83d6edb4ed66812fbfdb2a654b4d59edd4b12304058ec20
HIGHLIGHT_JS_VERSION := 11.12.0
HIGHLIGHT_JS_TARBALL_SHA256 := b8a006d30f45afe783072569f3d69c5b60c0e7b9ca28cd474e12f2584e2a3bd9
VENDOR_DIR := api/web/static/web/vendor
VENDOR_BUILD := build/vendor
VENDORED := graphql-ws.js graphql-ws.LICENSE.md markdown-it.js markdown-it.LICENSE \
	dompurify.js dompurify.LICENSE highlight.js highlight.LICENSE
# $(call npm_tarball,<name@version>,<tarball file>,<sha256>): fetched, checked, unpacked
# into $(VENDOR_BUILD)/<tarball file without .tgz>/package
define npm_tarball
	npm pack --silent --pack-destination $(VENDOR_BUILD) $(1) >/dev/null
	@echo "$(3)  $(VENDOR_BUILD)/$(2)" | sha256sum --check --strict --quiet \
		|| (echo "$(1)'s tarball is not the pinned one; its sum:" \
			&& sha256sum $(VENDOR_BUILD)/$(2) && exit 1)
	mkdir -p $(VENDOR_BUILD)/$(basename $(2)) && tar -xzf $(VENDOR_BUILD)/$(2) -C $(VENDOR_BUILD)/$(basename $(2))
endef
vendor:
	rm -rf $(VENDOR_BUILD) && mkdir -p $(VENDOR_BUILD)/stage
	$(call npm_tarball,graphql-ws@$(GRAPHQL_WS_VERSION),graphql-ws-$(GRAPHQL_WS_VERSION).tgz,$(GRAPHQL_WS_TARBALL_SHA256))
	$(call npm_tarball,markdown-it@$(MARKDOWN_IT_VERSION),markdown-it-$(MARKDOWN_IT_VERSION).tgz,$(MARKDOWN_IT_TARBALL_SHA256))
	$(call npm_tarball,dompurify@$(DOMPURIFY_VERSION),dompurify-$(DOMPURIFY_VERSION).tgz,$(DOMPURIFY_TARBALL_SHA256))
	$(call npm_tarball,@highlightjs/cdn-assets@$(HIGHLIGHT_JS_VERSION),highlightjs-cdn-assets-$(HIGHLIGHT_JS_VERSION).tgz,$(HIGHLIGHT_JS_TARBALL_SHA256))
	cp $(VENDOR_BUILD)/graphql-ws-$(GRAPHQL_WS_VERSION)/package/umd/graphql-ws.js $(VENDOR_BUILD)/stage/graphql-ws.js
	cp $(VENDOR_BUILD)/graphql-ws-$(GRAPHQL_WS_VERSION)/package/LICENSE.md $(VENDOR_BUILD)/stage/graphql-ws.LICENSE.md
	cp $(VENDOR_BUILD)/markdown-it-$(MARKDOWN_IT_VERSION)/package/dist/markdown-it.js $(VENDOR_BUILD)/stage/markdown-it.js
	cp $(VENDOR_BUILD)/markdown-it-$(MARKDOWN_IT_VERSION)/package/LICENSE $(VENDOR_BUILD)/stage/markdown-it.LICENSE
	cp $(VENDOR_BUILD)/dompurify-$(DOMPURIFY_VERSION)/package/dist/purify.es.mjs $(VENDOR_BUILD)/stage/dompurify.js
	cp $(VENDOR_BUILD)/dompurify-$(DOMPURIFY_VERSION)/package/LICENSE $(VENDOR_BUILD)/stage/dompurify.LICENSE
	cp $(VENDOR_BUILD)/highlightjs-cdn-assets-$(HIGHLIGHT_JS_VERSION)/package/es/highlight.js $(VENDOR_BUILD)/stage/highlight.js
	cp $(VENDOR_BUILD)/highlightjs-cdn-assets-$(HIGHLIGHT_JS_VERSION)/package/LICENSE $(VENDOR_BUILD)/stage/highlight.LICENSE
	@for f in $(VENDORED); do grep -q "  $$f$$" $(VENDOR_DIR)/SHA256SUMS \
		|| (echo "$$f has no sum in $(VENDOR_DIR)/SHA256SUMS" && exit 1) || exit 1; done
	@cd $(VENDOR_BUILD)/stage && sha256sum --check --strict --quiet $(abspath $(VENDOR_DIR))/SHA256SUMS \
		|| (echo "The vendored packages do not match $(VENDOR_DIR)/SHA256SUMS; their sums:" \
			&& sha256sum $(VENDORED) && exit 1)
	cd $(VENDOR_BUILD)/stage && cp $(VENDORED) $(abspath $(VENDOR_DIR))/

## check-vendor: the committed vendored files match their pinned SHA-256 sums (no network)
check-vendor:
	@cd $(VENDOR_DIR) && sha256sum --check --strict --quiet SHA256SUMS \
		|| (echo "$(VENDOR_DIR) differs from SHA256SUMS: run make vendor" && exit 1)

## sdk: generate the Python client from openapi.yaml into build/sdk/confab_client (not committed)
sdk: install
	$(BIN)/openapi-python-client generate --path openapi.yaml \
		--output-path build/sdk/confab_client --overwrite --meta none --config sdk/config.yaml
	cp sdk/streaming.py build/sdk/confab_client/streaming.py

## ts-types: TypeScript types from openapi.yaml (openapi-typescript), type-checked with tsc
ts-types:
	cd sdk/typescript && npm ci --no-audit --no-fund \
		&& npx --no-install openapi-typescript ../../openapi.yaml -o build/confab.d.ts \
		&& npx --no-install tsc --noEmit

## recover: end turns left streaming by dead workers
recover: install
	$(BIN)/python manage.py recover_turns

## bench: every benchmark of issue 21's targets in its --quick mode (each < 3 min), then
## one summary of PASS / MISS; exits non-zero only when a benchmark failed to run
bench: install
	$(BIN)/python -m bench.quick

## bench-*: benchmarks against baselines (PostgreSQL + Redis; see bench/BENCHMARKS.md)
bench-history: install
	$(BIN)/python -m bench.history_paging

bench-streaming: install
	$(BIN)/python -m bench.streaming

bench-turn: install
	$(BIN)/python -m bench.turn_cost

bench-throughput: install
	$(BIN)/python -m bench.rest_throughput

bench-attachments: install
	$(BIN)/python -m bench.attachments

clean:
	rm -rf build .pytest_cache
