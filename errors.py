"""The errors xnorflow reports to its user: every one carries a message that says what is wrong,
where, and what to do, and the exit code the command ends with. The CLI prints the message, never
a traceback. Imports nothing heavy, so every stage can raise them."""

from __future__ import annotations


class XnorflowError(Exception):
    """A mistake in the user's input or environment; the message is complete on its own."""

    exit_code = 1


class UsageError(XnorflowError, ValueError):
    """Command-line options that do not fit together (argparse's own code for usage errors)."""

    exit_code = 2


class OutputConflict(XnorflowError):
    """Writing the requested output would delete or overwrite something xnorflow did not write,
    or an input of the same command."""
