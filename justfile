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

# Format check, lint and types.
check: setup
    {{venv}}/bin/ruff format --check reorg_tui tests
    {{venv}}/bin/ruff check reorg_tui tests
    {{venv}}/bin/mypy reorg_tui

# SVG screenshots of the dashboard for the README, from a fixed sample state.
screenshots: setup
    TZ=UTC {{venv}}/bin/python -m reorg_tui.tui.screenshots screenshots

# The engine against a raw rename loop, same run, same filesystem (FILES=1000000 for the big one).
bench FILES="100000": setup
    {{venv}}/bin/reorg-tui bench --files {{FILES}}
