# Recipes a newcomer guesses. `just --list` shows them.

venv := ".venv"

# Make the virtual environment with the test and lint tools.
setup:
    python3 -m venv {{venv}} && {{venv}}/bin/pip install -q -e '.[dev]'

# The dashboard on a self-contained demo sandbox.
demo: setup
    {{venv}}/bin/reorg-tui demo

# The whole test suite, as CI runs it.
test:
    bash .ci/run

# Format check, lint, types, and the engine's import boundary.
check: setup
    {{venv}}/bin/ruff format --check reorg_tui tests
    {{venv}}/bin/ruff check reorg_tui tests
    {{venv}}/bin/mypy reorg_tui
    {{venv}}/bin/python -m pytest -q tests/test_import_hygiene.py

# SVG screenshots of the dashboard for the README, from a fixed sample state.
screenshots: setup
    TZ=UTC {{venv}}/bin/python -m reorg_tui.tui.screenshots screenshots

# The engine against a raw rename loop, same run, same filesystem (FILES=1000000 for the big one).
bench FILES="100000": setup
    {{venv}}/bin/reorg-tui bench --files {{FILES}}

# The crash suite's long form: many SIGKILL rounds at random moments (CI runs 4).
torture ROUNDS="50": setup
    REORG_KILL_ROUNDS={{ROUNDS}} {{venv}}/bin/python -m pytest -q --timeout 3600 tests/integration/test_headless.py -k sigkill
