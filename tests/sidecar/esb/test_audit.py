"""One audit record per authenticated send request; message bodies only when configured."""

from __future__ import annotations

import json

from tests.sidecar.esb.conftest import T0, Rig, RigFactory

DATA = {"heading": "Disk full", "message": "host-1 /var at 97%"}


async def test_successful_send_is_audited_without_its_body(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1,o2", "data": DATA})
    [record] = await rig.audit()
    assert record.request_id == envelope["request_id"]
    assert record.at == T0
    assert record.app_code == "bk_paas"
    assert record.account == "main"
    assert record.recipients == ["o1", "o2"]
    assert record.outcome == "ok"
    assert record.errcode is None
    assert record.msgid is not None and len(record.msgid.split(",")) == 2
    assert record.detail["component"] == "send_weixin"
    assert record.detail["channel"] == "template"
    assert record.body is None
    assert "Disk full" not in json.dumps(record.detail)


async def test_bodies_are_audited_when_configured(make_rig: RigFactory) -> None:
    rig = await make_rig(extra="[audit]\nstore_bodies = true\n")
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "url": "https://x.example/"})
    [record] = await rig.audit()
    assert record.body is not None
    body = json.loads(record.body)
    assert body["heading"] == "Disk full"
    assert body["message"] == "host-1 /var at 97%"
    assert body["url"] == "https://x.example/"


async def test_failed_send_records_the_wechat_errcode(rig: Rig) -> None:
    rig.wechat.queue("template_send", {"errcode": 43004, "errmsg": "require subscribe"})
    await rig.send("send_weixin", json={"receiver": "o1,o2", "data": DATA})
    [record] = await rig.audit()
    assert record.outcome == "partial"
    assert record.errcode == 43004
    [failed] = record.detail["failed"]
    assert failed["errcode"] == 43004
    assert failed["receivers"][0] in ("o1", "o2")


async def test_wecom_send_records_msgid_and_msgtype(rig: Rig) -> None:
    await rig.send("send_qy_weixin", json={"receiver": "u1|u2", "content": "c"})
    [record] = await rig.audit()
    assert record.account == "corp"
    assert record.recipients == ["u1", "u2"]
    assert record.msgid is not None and record.msgid.startswith("wecom-")
    assert record.detail["msgtype"] == "text"


async def test_username_send_records_the_username_check(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    await rig.send("send_weixin", json={"receiver__username": "alice,bob", "data": DATA})
    [record] = await rig.audit()
    assert record.outcome == "partial"
    assert record.recipients == ["o-alice"]
    assert record.detail["usernames"] == ["alice", "bob"]
    assert record.detail["username_check"]["unbound"] == ["bob"]


async def test_nobody_to_send_to_is_audited_as_failed(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver__username": "ghost", "data": DATA})
    [record] = await rig.audit()
    assert record.outcome == "failed"
    assert record.recipients == []


async def test_refused_parameters_are_audited_as_rejected(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1"})
    [record] = await rig.audit()
    assert record.outcome == "rejected"
    assert record.detail["message"] == "message data [data] This field is required."
    assert record.account == ""


async def test_every_request_gets_its_own_record(rig: Rig) -> None:
    for i in range(3):
        await rig.send("send_weixin", json={"receiver": f"o{i}", "data": DATA})
    assert [r.recipients for r in await rig.audit()] == [["o0"], ["o1"], ["o2"]]
