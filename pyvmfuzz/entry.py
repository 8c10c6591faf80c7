"""The command's entry point: Ctrl-C while the tool is still loading (its modules, the core, the
argument parser) ends it as Ctrl-C does later — one line, exit 130 — not with a traceback of
whatever import was under way. The CLI itself is pyvmfuzz/cli.py."""

import sys


def main() -> int:
    try:
        from pyvmfuzz.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:  # cli.main handles it once a command runs
        sys.stderr.write("pyvmfuzz: interrupted\n")
        return 130
