"""lsllama: label-supervised LLaMA classifiers (LoRA fine-tuning, prediction, embeddings) from Python.

A ctypes binding of liblsllama.so (installed inside this package); no PyTorch, no compiler at run time.

    clf = lsllama.pipeline("model.gguf", adapter="runs/sst2/best")
    clf("a gripping, funny film.")     # [{"label": "1", "score": 0.93}]

See docs/python.md in the repository.
"""
__version__ = "0.6.0"

from .errors import (ArgumentError, ConfigError, DataError, FileIOError, FormatError, LsllamaError, error_class,  # noqa: F401,E501
                     ModelFormatError, OutOfMemoryError, ShapeError, UnsupportedError)
from .pipeline import Pipeline, pipeline  # noqa: F401
from ._training import InMemory, train  # noqa: F401
from .estimators import LSClassifier, LSTokenClassifier  # noqa: F401
from ._cli import cli_path  # noqa: F401

__all__ = ["pipeline", "Pipeline", "train", "InMemory", "LSClassifier", "LSTokenClassifier", "cli_path", "error_class", "LsllamaError", "FileIOError", "FormatError", "ModelFormatError",
           "DataError", "UnsupportedError", "ShapeError", "ConfigError", "OutOfMemoryError", "ArgumentError",
           "__version__"]
