"""Resource-aware folding (xnorflow.hw.finn.folding): the search on hand-made layers, and in real
FINN builds, where its predicted resources must equal FINN's estimate report."""

from __future__ import annotations

import json

import pytest
import torch

from xnorflow.cli import main
from xnorflow.export.qonnx_export import export_qonnx_model, save_model
from xnorflow.hw.devices import device_for_board
from xnorflow.hw.finn.build import run_build
from xnorflow.hw.finn.folding import (
    RESOURCES,
    Choice,
    NoFittingFolding,
    Unit,
    balanced,
    fit,
    for_target,
)
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.hw.finn.report import summarize, target_line
from xnorflow.train.models import build_model

CAPACITY = {"LUT": 1000, "BRAM_18K": 100, "URAM": 0, "DSP": 10}


def _choice(name: str, cycles: int, lut: float, bram: float = 0.0) -> Choice:
    return Choice(((name, (("PE", cycles),)),), cycles, (lut, bram, 0.0, 0.0))


def _layer(name: str, *options: tuple[int, float, float]) -> Unit:
    return Unit((name,), [_choice(name, *o) for o in options])


# -------------------------------------------------------------------------- the search alone
def test_fit_takes_the_fastest_bound_within_the_budget():
    units = [_layer("a", (10, 700, 0), (20, 300, 0), (40, 100, 0)),
             _layer("b", (10, 300, 0), (20, 200, 0), (40, 100, 0))]
    plan = fit(units, CAPACITY, budget=0.8)
    # 10 cycles needs 1000 LUT (> 800); 20 cycles needs 500
    assert plan.cycles == 20 and plan.resources["LUT"] == 500
    assert fit(units, CAPACITY, budget=1.0).cycles == 10


def test_balanced_design_trades_bram_for_lut_where_the_device_is_short():
    # each layer: weights in BRAM (cheap in LUT) or in LUTRAM (no BRAM), same speed
    units = [_layer(n, (10, 100, 40), (10, 400, 0)) for n in "abc"]
    plan = fit(units, CAPACITY, budget=0.8)  # three BRAM layers need 120 BRAM, three LUT 1200
    assert plan.resources["BRAM_18K"] <= 80 and plan.resources["LUT"] <= 800
    assert sorted(c.resources[1] for c in plan.choices) == [0, 40, 40]


def test_no_fitting_folding_says_what_the_smallest_design_needs():
    units = [_layer("a", (10, 900, 0), (100, 600, 0)), _layer("b", (10, 400, 0))]
    with pytest.raises(NoFittingFolding, match=r"even the most folded design \(100 cycles per "
                                               r"frame\) needs LUT 1,000 \(100%\)"):
        fit(units, CAPACITY, budget=0.8)


def test_target_gets_the_cheapest_design_that_reaches_it_and_says_when_it_cannot():
    units = [_layer("a", (10, 700, 0), (20, 300, 0), (40, 100, 0))]
    assert for_target(units, CAPACITY, 0.8, bound=25).choices[0].cycles == 20
    plan = for_target(units, CAPACITY, 0.8, bound=5)
    assert plan.cycles == 10 and "needs at least 10 at full parallelism" in plan.notes[0]
    assert balanced(units, 5, (1.0,) * len(RESOURCES)) is None


def test_a_layer_that_costs_nothing_is_folded_just_fast_enough():
    units = [_layer("mvau", (10, 500, 0), (50, 100, 0)),
             _layer("free", (1, 0, 0), (10, 0, 0), (40, 0, 0), (100, 0, 0))]
    assert [c.cycles for c in units[1].choices] == [1, 10, 40, 100]  # all kept
    plan = fit(units, CAPACITY, budget=0.2)  # 500 LUT > 200: the MVAU takes 50 cycles
    assert [c.cycles for c in plan.choices] == [50, 40]


def test_a_resource_the_device_lacks_is_named_in_the_refusal():
    units = [Unit(("a",), [Choice((("a", ()),), 10, (100.0, 0.0, 2.0, 0.0))])]
    with pytest.raises(NoFittingFolding, match=r"needs URAM 2 \(the device has none\)"):
        fit(units, CAPACITY, budget=0.8)


def test_a_target_beyond_the_budget_says_what_it_needs():
    units = [_layer("a", (10, 950, 0), (40, 100, 0))]
    plan = for_target(units, CAPACITY, 0.8, bound=10)
    assert plan.cycles == 10
    assert "no design this fast stays within 80% of the device: this one needs LUT 950 (95%)" \
        in plan.notes


# ------------------------------------------------------------------------- in FINN builds
@pytest.fixture(scope="module")
def sfc_qonnx(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sfc") / "model.onnx"
    save_model(export_qonnx_model(build_model("sfc", (784,), 10).eval()), path)
    return path


def _estimates(qonnx, out, **options):
    build = BuildOptions(until="estimates", **options)
    run_build(qonnx, out, build)
    return summarize(out, build.clock_mhz, build.fpga_part, target_fps=build.target_fps,
                     board=build.board)


def test_default_build_is_the_fastest_design_within_the_budget(sfc_qonnx, tmp_path):
    summary = _estimates(sfc_qonnx, tmp_path / "b")
    plan = json.loads((tmp_path / "b" / "report" / "folding_search.json").read_text())
    # the search predicts exactly what FINN's estimate report then states
    assert plan["resources"] == pytest.approx({k: summary.resources.get(k, 0)
                                               for k in RESOURCES})
    assert plan["cycles"] == summary.bottleneck_cycles
    assert all(u <= 0.8 for u in summary.utilization.values())
    assert summary.folding["mode"] == "fit" and summary.target_met is None
    assert "the fastest design within 80% of every resource" in target_line(summary)
    # the label selection FINN estimates as free is folded just fast enough, not fully
    label = next(layer for layer in summary.layers if layer.op.startswith("LabelSelect"))
    assert label.pe < 10 or label.cycles * 10 > summary.bottleneck_cycles
    # a tighter budget gives a slower, smaller design
    small = _estimates(sfc_qonnx, tmp_path / "small", budget=0.2)
    assert small.estimated_fps < summary.estimated_fps
    assert all(u <= 0.2 for u in small.utilization.values())


def test_the_chosen_folding_is_reusable_as_a_folding_json(sfc_qonnx, tmp_path):
    first = _estimates(sfc_qonnx, tmp_path / "b", budget=0.5)
    again = _estimates(sfc_qonnx, tmp_path / "again", folding_config=str(
        tmp_path / "b" / "report" / "auto_folding_config.json"))
    assert ([layer.cycles for layer in again.layers]
            == [layer.cycles for layer in first.layers])
    assert again.resources == first.resources


def test_balanced_search_at_a_target_uses_less_of_the_device_than_setfolding(sfc_qonnx,
                                                                              tmp_path):
    ours = _estimates(sfc_qonnx, tmp_path / "ours", target_fps=50_000)
    finn = _estimates(sfc_qonnx, tmp_path / "finn", target_fps=50_000, folding_search="finn")
    assert ours.target_met and finn.target_met
    assert ours.folding["search"] == "balanced" and finn.folding["search"] == "finn"
    assert max(ours.utilization.values()) <= max(finn.utilization.values())
    assert "(xnorflow's balanced search: the cheapest folding for it)" in target_line(ours)


def test_contradicting_folding_options_name_the_conflict():
    from xnorflow.errors import UsageError

    with pytest.raises(UsageError, match="a --folding-config JSON is used as it is"):
        BuildOptions(folding_config="f.json", folding_search="finn").validate()


def test_a_budget_no_folding_meets_is_refused_with_the_need(sfc_qonnx, tmp_path):
    with pytest.raises(NoFittingFolding, match=r"no folding fits 1% of the device: even the most "
                                               r"folded design .* needs LUT"):
        _estimates(sfc_qonnx, tmp_path / "b", budget=0.01)


def test_cli_build_without_folding_options_fits_the_board(digits_tfc_run, tmp_path, capsys):
    assert main(["build", str(digits_tfc_run), "--out", str(tmp_path / "b"), "--verify", "50",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "folding: the fastest design within 80% of every resource" in out
    assert "resources fit Pynq-Z1" in out
    with pytest.raises(SystemExit) as exited:
        main(["build", str(digits_tfc_run), "--out", str(tmp_path / "c"), "--budget", "0"])
    assert exited.value.code == 2
    assert "argument --budget: 0 must be in (0, 1]" in capsys.readouterr().err


def test_board_capacity_decides_the_design(sfc_qonnx, tmp_path):
    """The same model and budget: each board's design fills that board's capacity, so the
    ZCU104 gets a strictly faster design that would not fit the Pynq-Z1's budget."""
    pynq = _estimates(sfc_qonnx, tmp_path / "z1")
    zcu = _estimates(sfc_qonnx, tmp_path / "zcu", board="ZCU104")
    small = device_for_board("Pynq-Z1").capacity()
    big = device_for_board("ZCU104").capacity()
    assert all(pynq.resources.get(k, 0) <= 0.8 * small[k] for k in RESOURCES)
    assert all(zcu.resources.get(k, 0) <= 0.8 * big[k] for k in RESOURCES)
    # the ZCU104's design is only possible because its capacity was used: it overruns the
    # Pynq-Z1's budget, and it is strictly faster (fewer cycles per frame)
    assert any(zcu.resources.get(k, 0) > 0.8 * small[k] for k in RESOURCES), zcu.resources
    assert zcu.bottleneck_cycles < pynq.bottleneck_cycles
    assert zcu.estimated_fps > pynq.estimated_fps


def test_an_ecp5_board_keeps_weight_roms_deeper_than_a_lut4_in_ebrs(sfc_qonnx, tmp_path):
    """ULX3S: FINN's flow runs for the Zynq stand-in, the folding fills the ECP5's capacity,
    and no weight ROM deeper than 16 words goes to LUTs (they would not route)."""
    _estimates(sfc_qonnx, tmp_path / "ulx3s", board="ULX3S")
    config = json.loads((tmp_path / "ulx3s" / "report" / "auto_folding_config.json")
                        .read_text())
    layers = {name: attrs for name, attrs in config.items() if name.startswith("MVAU")}
    assert layers
    for name, attrs in layers.items():
        mw_mh = {"MVAU_hls_0": (784, 256), "MVAU_hls_1": (256, 256), "MVAU_hls_2": (256, 256),
                 "MVAU_hls_3": (256, 10)}[name]
        depth = (mw_mh[1] // attrs["PE"]) * (mw_mh[0] // attrs["SIMD"])
        if attrs.get("ram_style") == "distributed":
            assert depth <= 16, (name, attrs)
    capacity = device_for_board("ULX3S").capacity()
    summary = json.loads((tmp_path / "ulx3s" / "report" / "folding_search.json").read_text())
    assert summary["resources"]["BRAM_18K"] <= 0.8 * capacity["BRAM_18K"]
