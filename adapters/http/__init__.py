"""What the HTTP adapters (``soap``, ``rest``) share: the request exchange between a listener thread and its
route, the listeners' audit trail and throttle, HTTP basic checks, TLS files and their option models.

Not an adapter (nothing registers it): a library for adapters, so that no adapter imports another.
"""
