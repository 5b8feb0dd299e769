"""Which configured account serves a send.

* ``send_weixin`` and ``send_msg``: the default account (``default = true``), whose kind picks
  the channel as BlueKing's ``wx_type`` did; ``send_mp_weixin``: the default MP account;
  ``send_qy_weixin``: the default WeCom account. The optional ``account`` parameter (ours) names
  another configured account.
* ``wx_qy_agentid`` / ``wx_qy_corpsecret`` (BlueKing's per-request WeCom app): BlueKing passed
  any value straight to WeChat. We accept them only when they name a WeCom app that is
  configured here (same corp as the chosen account; the agent id must match, and a secret, if
  given, must equal that app's secret — compared in constant time). Otherwise the sidecar would
  fetch and cache tokens for secrets it was never given, and any caller could use it to test
  guessed secrets or to send as an app the operators never approved. To allow a second app,
  add it as an ``[[accounts]]`` entry. On MP accounts the two parameters are ignored, as in
  BlueKing.
"""

from __future__ import annotations

from sidecar.config import AccountConfig, SidecarConfig, WecomAccount
from sidecar.errors import MalformedRequest
from sidecar.esb import params as p
from sidecar.esb.forms import SendJob

NOT_SUPPORTED = "WeChat type that is not supported [wx_type={kind}]: no {what} account is configured"


def choose(config: SidecarConfig, job: SendJob) -> AccountConfig:
    account = _named(config, job) if job.account else _default(config, job)
    if isinstance(account, WecomAccount) and (job.agent_id or job.corp_secret):
        return _override(config, account, job)
    return account


def _named(config: SidecarConfig, job: SendJob) -> AccountConfig:
    account = config.account(job.account)
    if account is None or (job.kind != "any" and account.kind != job.kind):
        raise p.ACCOUNT.error(f"Select a valid choice. {job.account[:64]} is not one of the available choices.")
    return account


def _default(config: SidecarConfig, job: SendJob) -> AccountConfig:
    if job.kind == "any":
        return config.default_account()
    account = config.default_of_kind(job.kind)
    if account is None:
        kind, what = ("mp", "Official Account (mp)") if job.kind == "mp" else ("qy", "WeCom (wecom)")
        raise MalformedRequest(NOT_SUPPORTED.format(kind=kind, what=what))
    return account


def _override(config: SidecarConfig, base: WecomAccount, job: SendJob) -> WecomAccount:
    same_corp = [a for a in config.accounts if isinstance(a, WecomAccount) and a.corp_id == base.corp_id]
    candidates = sorted(same_corp, key=lambda a: a is not base)  # the chosen account first
    if job.agent_id:
        if not job.agent_id.isdigit():
            raise p.AGENT_ID.error("Enter a whole number.")
        candidates = [a for a in candidates if a.agent_id == int(job.agent_id)]
        if not candidates:
            raise p.AGENT_ID.error("is not a WeCom app configured in the sidecar (add it as an [[accounts]] entry)")
    if job.corp_secret:
        candidates = [a for a in candidates if a.corp_secret.matches(job.corp_secret)]
        if not candidates:
            raise p.CORP_SECRET.error("does not match a WeCom app configured in the sidecar")
    return candidates[0]


__all__ = ["choose"]
