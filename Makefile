# Collab: `make run` serves it, `make test` proves it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi

.PHONY: run test venv dev-venv chromium soffice nginx captions-voice iproute2 migrate demo bench lint clean

$(VENV)/.installed: requirements.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev-venv: $(VENV)/.dev-installed

migrate: venv
	$(FLASK) db upgrade

run: migrate
	$(FLASK) serve

demo: migrate
	$(FLASK) demo

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's chromium for the browser tests…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need /usr/bin/chromium: run 'sudo apt-get install chromium' (Debian) first."; exit 1; \
	  fi; \
	fi

# LibreOffice turns PowerPoint/Word/OpenDocument pre-reads into slides (optional for `make run`; the
# conversion tests need it). Installed from Debian when missing and we are root; otherwise a note.
soffice:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's bubblewrap (the sandbox office files are converted in)…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      bubblewrap >/dev/null || echo "bubblewrap could not be installed."; \
	  else \
	    echo "Note: without bwrap office files are converted under unshare, or not at all (sudo apt-get install bubblewrap)."; \
	  fi; \
	fi
	@if ! command -v soffice >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's LibreOffice (impress, writer) for the slide conversion tests…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      libreoffice-impress libreoffice-writer >/dev/null || echo "LibreOffice could not be installed."; \
	  else \
	    echo "Note: without soffice the PPTX/DOCX conversion tests are skipped (sudo apt-get install --no-install-recommends libreoffice-impress libreoffice-writer)."; \
	  fi; \
	fi

# The reference deployment test (tests/test_deployment.py) runs Debian's nginx in front of the app.
nginx:
	@if ! command -v nginx >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's nginx-light for the reference deployment test…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      nginx-light >/dev/null || echo "nginx could not be installed."; \
	  else \
	    echo "Note: without nginx the reference deployment test is skipped (sudo apt-get install nginx-light)."; \
	  fi; \
	fi

# espeak-ng speaks the sentences the captions tests and bench/captions.py transcribe.
captions-voice:
	@if ! command -v espeak-ng >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's espeak-ng (speech for the captions tests)…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      espeak-ng >/dev/null || echo "espeak-ng could not be installed."; \
	  else \
	    echo "The captions tests need espeak-ng: run 'sudo apt-get install espeak-ng' (Debian) first."; exit 1; \
	  fi; \
	fi


# The weak-link test (tests/test_media_weak_link.py) and benchmark (bench/weak_link.py) shape a veth pair
# with `ip` and `tc` in a network namespace (root).
iproute2:
	@if ! command -v tc >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing Debian's iproute2 (ip, tc) for the weak-link test…"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      iproute2 >/dev/null || echo "iproute2 could not be installed."; \
	  else \
	    echo "Note: without ip and tc (and root) the weak-link test is skipped and bench/weak_link.py runs only --line in-process."; \
	  fi; \
	fi

test: dev-venv chromium soffice nginx captions-voice iproute2
	$(PY) tests/run.py

# make bench: seeds 2,000 threads and 100,000 posts into a fresh data folder, starts `flask --app wsgi serve`,
# measures the room page, a 200-post thread page and API post creation at concurrency 1 and 16, and writes the
# table into docs/benchmarks.md ("## HTTP (issue 2)"). Flags go in BENCH_ARGS, e.g. a quick smoke run:
#   make bench BENCH_ARGS="--threads 60 --posts 3000 --requests 40 --no-write"
# (.venv/bin/python bench/http.py --help lists them all; --profile post16 records the server with py-spy).
bench: dev-venv
	$(PY) bench/http.py $(BENCH_ARGS)

lint: dev-venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
