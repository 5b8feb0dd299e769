"""A WeChat emulator for development and tests: MP and WeCom APIs, callbacks, simulated people.

Not product code. One aiohttp server answers the MP API paths (api.weixin.qq.com), the WeCom API
paths (qyapi.weixin.qq.com), the WeCom login pages, and an admin API under ``/_emu`` to drive
simulated people, inject faults and inspect what each phone shows. Start it in-process with
:func:`run_emulator` or as ``python -m devtools.emulator --config emu.json``.
"""

from devtools.emulator.app import Emulator, create_app, run_emulator
from devtools.emulator.config import EmulatorConfig, MpApp, Template, Timing, User, WecomAgent, WecomCorp, load_config
from devtools.emulator.records import SERVICE_ERROR

__all__ = [
    "SERVICE_ERROR",
    "Emulator",
    "EmulatorConfig",
    "MpApp",
    "Template",
    "Timing",
    "User",
    "WecomAgent",
    "WecomCorp",
    "create_app",
    "load_config",
    "run_emulator",
]
