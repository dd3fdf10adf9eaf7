"""The kernel's config by service (kernel/config.py): one record per service, each flag on its field.

Proves: every setting has one key and one owner record; KernelConfig.from_flags routes keys as the
command line names them to their records and refuses an unknown one; each record checks its own
values when it is made (so a bad value fails wherever it comes from); flags() and with_flags() give
the same config back; a field declared with help is a flag in its record's --help group, with the
field's default, and one declared without help is settable from code only; a bad --mcp-config file
is refused by the front before a kernel starts.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, fields

import pytest

import kernel.config as C
from aios_shell.flags import HelpFormatter, add_kernel_args, config_from_args
from aios_shell.preflight import PreflightError, preflight_config


def test_every_setting_has_one_key_and_one_owner():
    owners = {}
    for owner, cls in C.RECORDS.items():
        for f in fields(cls):
            assert f.metadata.get("key"), f"{cls.__name__}.{f.name} has no key"
            owners.setdefault(f.metadata["key"], []).append(owner)
    assert all(len(v) == 1 for v in owners.values())
    assert set(owners) | {"data_dir"} == set(C.KEYS)
    assert C.KEYS["scheduler"] == ("sched", "policy") and C.KEYS["confine"] == ("confine", "mode")
    assert C.KEYS["data_dir"] == ("", "data_dir")  # the one setting every service shares


def test_from_flags_routes_to_the_records():
    c = C.KernelConfig.from_flags(llm_name="gpt-4", scheduler="rr", max_batch=3, storage_sync="normal",
                                  mem_search="bm25", confine="off", trace="off", log_level="debug",
                                  kill_grace_s=0.5, interactive_confirm=True)
    assert (c.llm.name, c.sched.policy, c.sched.max_batch, c.storage.sync, c.memory.search) == \
        ("gpt-4", "rr", 3, "normal", "bm25")
    assert (c.confine.mode, c.trace.mode, c.logs.level, c.procs.kill_grace_s, c.access.interactive_confirm) == \
        ("off", "off", "DEBUG", 0.5, True)
    assert c.tools == C.ToolsConfig()  # a record given nothing keeps its defaults
    with pytest.raises(TypeError, match="no setting max_bach"):
        C.KernelConfig.from_flags(max_bach=3)


@pytest.mark.parametrize("record, values, message", [
    (C.SchedConfig, {"max_batch": 0}, "--max_batch"),
    (C.SchedConfig, {"policy": "lottery"}, "--scheduler"),
    (C.LLMConfig, {"weights": "int8", "device": "cuda"}, "--weights"),
    (C.MemoryConfig, {"budget_bytes": 1}, "mem_block_max_bytes"),
    (C.ProcessConfig, {"max_agents": 0}, "--max_agents"),
    (C.ConfineConfig, {"mode": "maybe"}, "--confine"),
    (C.LogConfig, {"max_bytes": 10}, "--log-max-bytes"),
    (C.TraceConfig, {"otlp_endpoint": "ftp://x"}, "--otlp-endpoint"),
    (C.AccessConfig, {"quota_syscall_burst": 0}, "quota_syscall_burst"),
    (C.StorageConfig, {"sync": "sometimes"}, "--storage_sync"),
])
def test_each_record_checks_its_own_values_wherever_they_come_from(record, values, message):
    with pytest.raises(ValueError, match=message):
        record(**values)
    key = {f.name: f.metadata["key"] for f in fields(record)}
    with pytest.raises(ValueError, match=message):  # the same rule through the flags' names
        C.KernelConfig.from_flags(**{key[k]: v for k, v in values.items()})


def test_flags_and_with_flags_give_the_same_config_back(tmp_path):
    c = C.KernelConfig.from_flags(data_dir=str(tmp_path), max_new_tokens=7, quota_llm_tokens=100)
    assert C.KernelConfig.from_flags(**c.flags()) == c
    d = c.with_flags(max_new_tokens=9)
    assert d.llm.max_new_tokens == 9 and c.llm.max_new_tokens == 7 and d.access.quota_llm_tokens == 100
    with pytest.raises(ValueError):
        c.with_flags(max_new_tokens=0)
    assert C.KernelConfig.from_flags(log_dir="rel").logs.dir.startswith("/")  # paths made absolute once


def test_a_field_with_help_is_a_flag_in_its_records_group(monkeypatch):
    @dataclass
    class Extra(C.Record):
        GROUP = "extra"
        knob: int = C.opt("extra_knob", 5, "a knob a user may turn")
        hidden: int = C.opt("extra_hidden", 1)

    monkeypatch.setitem(C.RECORDS, "extra", Extra)  # a new service's record, and nothing else
    monkeypatch.setattr(C, "KEYS", C._keys())
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    add_kernel_args(p)
    text = p.format_help()
    section = text.split("\nextra:\n", 1)[1]
    assert "--extra-knob EXTRA_KNOB" in section and "a knob a user may turn (default: 5)" in " ".join(section.split())
    assert "extra-hidden" not in text  # no help: not a flag
    assert p.parse_args(["--extra_knob", "8"]).extra_knob == 8  # typed from the annotation, both spellings
    assert C.KEYS["extra_knob"] == ("extra", "knob") and C.KEYS["extra_hidden"] == ("extra", "hidden")


def test_a_bad_mcp_config_is_refused_before_a_kernel_starts(tmp_path):
    bad = tmp_path / "mcp.json"
    bad.write_text(json.dumps({"mcpServers": {"a": {"args": []}}}))
    p = argparse.ArgumentParser()
    add_kernel_args(p)
    with pytest.raises(ValueError, match='--mcp_config: .*"command" must be'):
        config_from_args(p.parse_args(["--mcp-config", str(bad)]))
    with pytest.raises(PreflightError, match="--mcp_config") as e:  # KernelClient's check, for callers from code
        preflight_config(C.KernelConfig.from_flags(mcp_config=str(bad)))
    assert e.value.code == "EINVAL"
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"mcpServers": {}}))
    assert config_from_args(p.parse_args(["--mcp-config", str(good)])).tools.mcp_config == str(good)
