"""Development tools, not product code: the WeChat emulator and the demo.

Nothing under ``gateway/`` or ``sidecar/`` may import from here; these tools stand in for WeChat
(and for the people holding phones) so the system can be run and tested on loopback.
"""
