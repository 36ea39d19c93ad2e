"""Exceptions: one class per ll_status of include/lsllama.h, each carrying the library's message.

=====================  =====================  ================================================================
class                  ll_status              raised for
=====================  =====================  ================================================================
``FileIOError``        LL_ERR_IO (-1)         a file that cannot be opened, read, mapped or written (also an
                                              ``OSError``)
``FormatError``        LL_ERR_FORMAT (-2)     malformed or truncated contents: a model, tokenizer, adapter or
                                              data file (also a ``ValueError``); ``ModelFormatError`` and
                                              ``DataError`` are the same class (the library has one code for
                                              both kinds of file)
``UnsupportedError``   LL_ERR_UNSUPPORTED(-3) a valid file with a feature lsllama does not handle (dtype,
                                              architecture, CPU instructions)
``ShapeError``         LL_ERR_SHAPE (-4)      a tensor missing or of the wrong shape (also a ``ValueError``)
``ConfigError``        LL_ERR_CONFIG (-5)     inconsistent hyper-parameters (also a ``ValueError``)
``OutOfMemoryError``   LL_ERR_NOMEM (-6)      an allocation failed (also a ``MemoryError``)
``ArgumentError``      LL_ERR_ARG (-7)        a bad argument: an option value, ids outside the vocabulary, a
                                              call the pipeline cannot serve (also a ``ValueError``)
=====================  =====================  ================================================================

All derive from ``LsllamaError``, whose ``code`` is the ll_status (an int), ``status`` its name
("LL_ERR_IO", ...) and ``message`` (also ``str(e)``) the library's message, naming the file, line, tensor or key.
Where the library names an option as the ``lsllama`` tool spells it, the message names the keyword argument
instead (``--overwrite`` is ``overwrite=True``, ``--grad-accum 4`` is ``grad_accum=4``, ``--out`` is ``out=``).
"""
import re


class LsllamaError(Exception):
    """An error reported by liblsllama (or by this package, with the code the library would use)."""

    code = 0
    status = "LL_OK"

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class FileIOError(LsllamaError, OSError):
    code, status = -1, "LL_ERR_IO"

    def __init__(self, message):  # OSError's constructor would read message as errno
        LsllamaError.__init__(self, message)


class FormatError(LsllamaError, ValueError):
    code, status = -2, "LL_ERR_FORMAT"


ModelFormatError = FormatError
DataError = FormatError


class UnsupportedError(LsllamaError):
    code, status = -3, "LL_ERR_UNSUPPORTED"


class ShapeError(LsllamaError, ValueError):
    code, status = -4, "LL_ERR_SHAPE"


class ConfigError(LsllamaError, ValueError):
    code, status = -5, "LL_ERR_CONFIG"


class OutOfMemoryError(LsllamaError, MemoryError):
    code, status = -6, "LL_ERR_NOMEM"


class ArgumentError(LsllamaError, ValueError):
    code, status = -7, "LL_ERR_ARG"


_BY_CODE = {c.code: c for c in (FileIOError, FormatError, UnsupportedError, ShapeError, ConfigError,
                                OutOfMemoryError, ArgumentError)}


def error_class(code):
    """The exception class of an ll_status code (``LsllamaError`` for a code this package does not know)."""
    return _BY_CODE.get(code, LsllamaError)


def raise_for(rc, err):
    """Raise the class of ``rc`` (a negative ll_status) with the message in ``err`` (an ll_error)."""
    msg = python_spelling(err.message.decode("utf-8", "replace")) if err is not None else ""
    cls = error_class(rc)
    e = cls(msg or "lsllama error %d" % rc)
    if cls is LsllamaError:
        e.code = rc
    raise e


# An option in a library message: "--name" standing alone (not inside a path such as "/tmp/a--b.tsv"), with its
# value where the message gives one (a number, the placeholder N, or one of the option values the library's
# messages write).
_OPTION = re.compile(r"(?<![\w/.-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w/-]|\.\w)(?: (\d+|N|bf16|f32|norms|token)\b)?")


def _boolean_options():
    """The keyword arguments that are switches (default False): those a message names as ``name=True``."""
    import inspect
    from ._training import train
    from .estimators import LSClassifier, LSTokenClassifier
    names = set()
    for fn in (train, LSClassifier.__init__, LSTokenClassifier.__init__):
        names.update(n for n, p in inspect.signature(fn).parameters.items() if p.default is False)
    return names


def python_spelling(message):
    """``message`` with each option the library names as the lsllama tool spells it (``--grad-accum 4``) given as
    the keyword argument a Python caller passes (``grad_accum=4``); switches read ``name=True``, an option named
    without a value ``name=``."""
    switches = None

    def keyword(m):
        nonlocal switches
        name, value = m.group(1).replace("-", "_"), m.group(2)
        if value is not None:
            return "%s=%s" % (name, value if value.isdigit() or value == "N" else '"%s"' % value)
        if switches is None:
            switches = _boolean_options()
        return name + ("=True" if name in switches else "=")

    return _OPTION.sub(keyword, message)
