"""Exceptions shared by the library. The CLI turns them into one-line messages."""


class TinyaugError(Exception):
    """An error the user can fix: the message says what was expected, what was found, and the fix."""


class InputError(TinyaugError):
    """Bad input data: names the file, line or column."""


class ModelLoadError(TinyaugError):
    """A model, tokenizer or vector file that cannot be loaded."""


class OutputError(TinyaugError):
    """An output path that would replace something the user owns, or one of the command's inputs."""
