"""Exit codes shared by every command."""

EXIT_OK, EXIT_ALL_FAILED, EXIT_USAGE = 0, 1, 2
