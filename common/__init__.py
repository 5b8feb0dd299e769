"""Small helpers both tiers use and that carry no policy: strict TOML config, secrets, logs,
the request-id middleware.

Nothing here opens a connection; nothing here knows about WeChat or the relay.
"""
