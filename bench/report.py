"""Results out: the printed table, ``bench/results.json`` and the throughput/latency plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.profile import table as profile_table

RESULTS = Path(__file__).resolve().parent / "results.json"
PLOT = Path(__file__).resolve().parent.parent / "docs" / "perf-gateway.png"


def save(results: dict[str, Any], path: Path = RESULTS) -> None:
    """Write the sections measured now over those of an earlier run (``--only`` keeps the rest)."""
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            merged = {}
    merged.update(results)
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def table(results: dict[str, Any]) -> str:
    """The figures as plain-text tables, one per section that was run."""
    lines: list[str] = []
    if "gateway" in results:
        lines += _gateway_table(results["gateway"])
        if "profile" in results["gateway"]:
            lines += profile_table(results["gateway"]["profile"])
    if "relay" in results:
        lines += _relay_table(results["relay"])
    if "memory" in results:
        lines += _memory_table(results["memory"])
    return "\n".join(lines)


def _gateway_table(section: dict[str, Any]) -> list[str]:
    head = (
        f"{'variant':38s} {'req/s':>8s} {'median':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'CPU':>5s} {'us/req':>7s} "
        f"{'RSS MiB':>8s}"
    )
    lines = [f"Gateway, safe-mode MP callbacks, server on one core (wrk -c{section['connections']}, "
             f"{section['duration_s']:g} s, best of {section['rounds']})", head, "-" * len(head)]
    for v in section["variants"]:
        lines.append(
            f"({v['key']}) {v['label']:34s} {v['rps']:8.0f} {v.get('rps_median', v['rps']):8.0f} "
            f"{v['p50_ms']:8.1f} {v['p99_ms']:8.1f} "
            f"{v['cpu_util']:5.2f} {v['cpu_us_per_req']:7d} {v['rss']['peak_mib']:8.1f}"
        )
    r = section["ratios"]
    lines.append(
        f"(c)/(a) = {r['c_over_a']:.2f} (target >= {r['c_over_a_target']}: {_verdict(r['c_over_a_met'])});  "
        f"(c)/(b) = {r['c_over_b']:.2f} (target >= {r['c_over_b_target']}: {_verdict(r['c_over_b_met'])});  "
        f"(c)/(d) = {r['c_over_d']:.2f}"
    )
    if "ratios_of_medians" in section:
        m = section["ratios_of_medians"]
        lines.append(
            f"medians: (c)/(a) = {m['c_over_a']:.2f};  (c)/(b) = {m['c_over_b']:.2f};  (c)/(d) = {m['c_over_d']:.2f}"
        )
    gateway = next(v for v in section["variants"] if v["key"] == "c").get("gateway", {})
    if gateway:
        lines.append(
            f"gateway run: {gateway['accepted']} new events spooled, {gateway['duplicates']} duplicates, "
            f"{gateway['group_commits']} group commits (mean {gateway['mean_group']} events, "
            f"{gateway['mean_commit_ms']} ms), {gateway['relayed_to_sink']} relayed, "
            f"{gateway['unrelayed_after_run']} left after the run"
        )
    return [*lines, ""]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _relay_table(section: dict[str, Any]) -> list[str]:
    push, pulled = section["push_drain"], section["pull_drain"]
    lines = [
        "Relay",
        f"  push drain of {push['events']} events: {push['events_per_s']:.0f} events/s ({push['seconds']} s)",
        f"  pull drain of {pulled['events']} events: {pulled['events_per_s']:.0f} events/s ({pulled['seconds']} s)",
    ]
    for st in section["steady"]:
        lines += [
            f"  steady {st['rate']:.0f} callbacks/s (target {st['target_rate']:g}) for {st['seconds']:g} s: "
            f"{st['sent']} sent, {st['answered_200']} answered 200, "
            f"{st['unanswered_30s']} unanswered after 30 s, {st['reached_sidecar']} reached the sidecar",
            f"    receipt -> sidecar  p50 {st['to_sidecar_p50_ms']:.1f} ms  p99 {st['to_sidecar_p99_ms']:.1f} ms"
            f"  max {st['to_sidecar_max_ms']:.1f} ms",
            f"    receipt -> answer   p50 {st['answer_p50_ms']:.1f} ms  p99 {st['answer_p99_ms']:.1f} ms"
            f"  max {st['answer_max_ms']:.1f} ms",
        ]
    return [*lines, ""]


def _memory_table(section: dict[str, Any]) -> list[str]:
    load, big = section["under_load"], section["big_spool"]
    return [
        "Memory (gateway VmRSS)",
        f"  idle {load['idle_mib']} MiB; under load ({load['rps']:.0f} req/s) peak {load['peak_mib']} MiB, "
        f"median {load['median_mib']} MiB; after {load['after_mib']} MiB",
        f"  {big['events']}-event spool ({big['spool_mib']} MiB on disk): startup {big['startup_s']} s, "
        f"idle {big['idle_mib']} MiB, relaying peak {big['relaying_peak_mib']} MiB "
        f"({big['relay_events_per_s']:.0f} events/s over {big['watched_s']:g} s)",
        "",
    ]


def plot(section: dict[str, Any], path: Path = PLOT) -> Path:
    """Throughput and p50/p99 latency per variant, side by side (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = section["variants"]
    labels = [f"({v['key']}) {v['label']}" for v in variants]
    colors = ["#9e9e9e", "#5c8fd6", "#e07b39", "#8bb174"][: len(variants)]
    fig, (left, right, cost) = plt.subplots(
        1, 3, figsize=(15, 4.8), constrained_layout=True, gridspec_kw={"width_ratios": [1.3, 1, 1]}
    )
    ys = range(len(variants))
    left.barh(ys, [v["rps"] for v in variants], color=colors)
    left.set_yticks(list(ys), labels)
    left.invert_yaxis()
    left.set_xlabel("requests/s (higher is better)")
    left.set_title("Throughput, server pinned to one core")
    for y, v in zip(ys, variants, strict=True):
        left.text(v["rps"], y, f" {v['rps']:.0f}", va="center")
    width = 0.38
    right.barh([y - width / 2 for y in ys], [v["p50_ms"] for v in variants], width, color=colors, label="p50")
    right.barh([y + width / 2 for y in ys], [v["p99_ms"] for v in variants], width, color=colors, alpha=0.5,
               hatch="//", label="p99")
    right.set_yticks(list(ys), [f"({v['key']})" for v in variants])
    right.invert_yaxis()
    right.set_xlabel(f"latency, ms (lower is better; wrk -c{section['connections']})")
    right.set_title("p50 (solid) and p99 (hatched)")
    cost.barh(ys, [v["cpu_us_per_req"] for v in variants], color=colors)
    cost.set_yticks(list(ys), [f"({v['key']})" for v in variants])
    cost.invert_yaxis()
    cost.set_xlabel("server CPU per request, us (lower is better)")
    cost.set_title("CPU cost per callback")
    for y, v in zip(ys, variants, strict=True):
        cost.text(v["cpu_us_per_req"], y, f" {v['cpu_us_per_req']}", va="center")
    for axis in (left, right, cost):
        axis.margins(x=0.15)
    ratios = section["ratios"]
    fig.suptitle(
        f"Safe-mode MP callbacks: (c)/(a) = {ratios['c_over_a']:.2f} (target 0.8), "
        f"(c)/(b) = {ratios['c_over_b']:.2f} (target 2)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
