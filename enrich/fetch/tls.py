"""The TLS context of GitHub's client, built without importing httpx.

Building it is mostly OpenSSL reading certifi's CA bundle (~0.1 s on a small machine),
and OpenSSL does that without holding the GIL: the pipeline builds the context on a
worker thread as soon as a request is sure to come, while the imports and the cache
reads go on, and hands it to :class:`~enrich.fetch.github.GithubFetcher`.
"""

from __future__ import annotations

import os
import ssl


def tls_context() -> ssl.SSLContext:
    """The context httpx builds for ``verify=True`` (``httpx.create_ssl_context``):
    from ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's CA bundle. A test
    checks that the two agree."""
    if cafile := os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=cafile)
    if capath := os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
