# One command to run, one to test; each sets up what it needs first.
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: run test lint bench clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# OpenSSL's headers, for the compiled token check (tracking/_hitline.c); without them the
# package builds without it and runs the Python reference, slower.
OPENSSL_HEADER := /usr/include/openssl/sha.h
$(OPENSSL_HEADER):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev >/dev/null || \
	  echo "could not install libssl-dev: the token check is not compiled" >&2; \
	else \
	  echo "OpenSSL's headers are missing (Debian: libssl-dev): the token check is not compiled" >&2; \
	fi

.venv/.synced: $(UV) pyproject.toml uv.lock setup.py src/pixeltrail/tracking/_htmlscan.c \
		src/pixeltrail/tracking/_hitline.c | $(OPENSSL_HEADER)
	$(UV) sync --frozen --quiet
	touch $@

run: .venv/.synced
	.venv/bin/pixeltrail serve

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The dashboard tests drive Debian's Chromium (browsers cannot be downloaded by Playwright here);
# installed when missing and this is a Debian machine where we may use apt-get.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "The dashboard tests need Chromium at $(CHROMIUM): install Debian's chromium package" >&2; \
	  exit 1; \
	fi

# The inbound tests read mail over IMAP from Debian's Dovecot, started by the tests themselves
# on loopback (tests/inbound/imap_server.py); installed when missing, like Chromium.
DOVECOT := /usr/sbin/dovecot
$(DOVECOT):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	else \
	  echo "The inbound tests need Dovecot at $(DOVECOT): install Debian's dovecot-imapd package" >&2; \
	  exit 1; \
	fi

test: lint $(CHROMIUM) $(DOVECOT)
	.venv/bin/pytest

bench: $(UV)
	$(UV) sync --frozen --quiet --group bench
	.venv/bin/python bench/instrument.py

clean:
	rm -rf .venv $(TOOLS)
