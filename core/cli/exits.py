"""Exit codes shared by every command."""

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN = EXIT_ALL_FAILED  # `quorum doctor`: something is broken (warnings alone exit 0)
