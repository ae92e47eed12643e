"""Exit codes, documented in the README and in --help."""

OK = 0
LEFT_BEHIND = 1  # --once: some files were quarantined or could not be moved (bench: one did not arrive)
USAGE = 2  # bad flags, environment, config file or folders
ALREADY_RUNNING = 3  # another instance holds the source
NOT_FOUND = 4  # quarantine: no such item
INTERRUPTED = 130
INTERNAL = 70  # a bug: please report it

EPILOG = (
    "Exit codes: 0 ok; 1 --once left files quarantined or unmoved (bench: a file did not arrive); "
    "2 bad settings or usage; 3 another instance is processing the source; 4 no such quarantined file; "
    "70 internal error."
)
