"""Every default and choice list of the CLI is the library's: read here straight from the dataclass
fields, function signatures and registries, never from the CLI's own declarations."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

from hwlat.cli import build_parser


def field(cls_path: str, name: str):
    """The default of dataclass field ``name`` of ``module:Class``."""
    cls = _obj(cls_path)
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def param(func_path: str, name: str):
    """The default of parameter ``name`` of ``module:function`` (or ``module:Class.method``)."""
    return inspect.signature(_obj(func_path)).parameters[name].default


def const(path: str):
    return _obj(path)


def _obj(path: str):
    import importlib

    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj


NA, CMP = "hwlat.search.netadapt:NetAdaptConfig", "hwlat.experiments.compare:CompareConfig"
PROFILE, TIMING = "hwlat.profiler.measure.profile:profile", "hwlat.profiler.measure.timing:TimingConfig"
MEASURE = {
    "--runtime": lambda: param(PROFILE, "runtime"),
    "--variant": lambda: param(PROFILE, "variant"),
    "--target": lambda: field(TIMING, "target"),
    "--max-seconds": lambda: field(TIMING, "max_seconds"),
    "--repeats": lambda: const("hwlat.profiler.measure.profile:CLI_REPEATS"),
}
SAMPLING = {
    "--space": lambda: param("hwlat.archs.space:parse_sample", "default_space"),
    "--seed": lambda: param("hwlat.archs.space:Space.sample_archs", "seed"),
}
SEARCH_SHARED = {"--runtime": lambda: param(PROFILE, "runtime")}

# (command, option) -> the library default it stands for
DEFAULTS = {
    ("export", "--grouped"): lambda: param("hwlat.profiler.export.tflite:tflite_segment", "grouped"),
    **{
        (f"profile {g}", o): v
        for g in ("kernels", "blocks", "models")
        for o, v in {**SAMPLING, **MEASURE}.items()
    },
    **{("profile calibration", o): v for o, v in MEASURE.items()},
    # profile file: the runtime is the file format's unless --runtime
    **{("profile file", o): v for o, v in MEASURE.items() if o != "--runtime"},
    ("profile calibration", "--space"): lambda: const("hwlat.archs.space:DEFAULT_SPACE"),
    ("profile calibration", "-n"): lambda: param("hwlat.archs.calibration:calibration_set", "n"),
    ("profile calibration", "--seed"): lambda: param("hwlat.archs.calibration:calibration_set", "seed"),
    ("profile anomalies", "--factor"): lambda: param("hwlat.profiler.analysis.anomalies:anomalies", "factor"),
    **{("profile bundle", o): v for o, v in SAMPLING.items()},
    ("profile import-table", "--runtime"): lambda: param(
        "hwlat.profiler.storage.tables:import_table", "runtime"
    ),
    ("suggest", "--seed"): lambda: param("hwlat.latency_models.suggest:suggest", "seed"),
    ("suggest", "--pool"): lambda: param("hwlat.latency_models.suggest:suggest", "pool"),
    ("netadapt", "--runtime"): lambda: param(PROFILE, "runtime"),
    ("netadapt", "--seed-steps"): lambda: param(
        "hwlat.search.evaluators:TrainableTask.__init__", "scratch_steps"
    ),
    ("netadapt", "--seed"): lambda: field(NA, "seed"),
    ("netadapt", "--short-steps"): lambda: field(NA, "short_steps"),
    ("netadapt", "--long-steps"): lambda: field(NA, "long_steps"),
    ("netadapt", "--delta"): lambda: field(NA, "delta_fraction"),
    ("netadapt", "--decay"): lambda: field(NA, "decay"),
    ("netadapt", "--min-proposals"): lambda: field(NA, "min_proposals"),
    ("netadapt", "--max-steps"): lambda: field(NA, "max_steps"),
    ("netadapt", "--criterion"): lambda: field(NA, "criterion"),
    ("netadapt", "--holdout"): lambda: const("hwlat.search.netadapt:HOLDOUT"),
    ("search", "--runtime"): lambda: param(PROFILE, "runtime"),
    ("search", "--train-steps"): lambda: const("hwlat.search.nas:DEFAULT_TRAIN_STEPS"),
    ("search", "--seed"): lambda: param("hwlat.search.nas:make_controller", "seed"),
    ("search", "--controller"): lambda: const("hwlat.search.nas:DEFAULT_CONTROLLER"),
    ("search", "--budget"): lambda: const("hwlat.search.nas:DEFAULT_BUDGET"),
    ("search", "--space"): lambda: const("hwlat.search.nas:DEFAULT_SPACE"),
    ("search", "--form"): lambda: param("hwlat.search.nas:search", "form"),
    ("search", "--batch"): lambda: param("hwlat.search.nas:search", "batch"),
    ("dashboard build", "--output"): lambda: param("hwlat.dashboards.report:build_report", "out"),
    ("dashboard serve", "--runtime"): lambda: param("hwlat.dashboards.app:make_app", "runtime"),
    **{
        ("demo compare", o): (lambda f=f: field(CMP, f))
        for o, f in {
            "--seed-arch": "seed_arch",
            "--resolution": "resolution",
            "--seed-steps": "seed_steps",
            "--short-steps": "short_steps",
            "--long-steps": "long_steps",
            "--delta": "delta",
            "--ratio": "ratio",
            "--nas-budget": "nas_budget",
            "--nas-steps": "nas_steps",
            "--nas-resolution": "nas_resolution",
            "--nas-controllers": "controllers",
            "--threads": "threads",
            "--skip": "skip",
            "--max-seconds": "max_seconds",
        }.items()
    },
}

SPACES = lambda: const("hwlat.archs.space:SPACE_NAMES")
# (command, option) -> the registry its choices are
CHOICES = {
    ("fit", "--kind"): lambda: const("hwlat.latency_models:KINDS"),
    ("search", "--controller"): lambda: const("hwlat.search.nas:CONTROLLERS"),
    ("search", "--form"): lambda: const("hwlat.search.nas:REWARD_FORMS"),
    ("search", "--space"): SPACES,
    ("netadapt", "--criterion"): lambda: const("hwlat.search.netadapt:CRITERIA"),
    ("suggest", "--space"): SPACES,
    ("profile import-table", "--space"): SPACES,
    ("profile calibration", "--space"): SPACES,
    ("export", "--grouped"): lambda: const("hwlat.profiler.export.tflite:GROUPED"),
    ("export", "--quantize"): lambda: const("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
    ("profile bundle", "--quantize"): lambda: const("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
    ("profile file", "--variant"): lambda: const("hwlat.profiler.storage.store:VARIANTS"),
    ("export", "format"): lambda: const("hwlat.cli.arch:EXPORT_FORMATS"),  # the CLI's two exporters
    **{(f"profile {c}", "--space"): SPACES for c in ("kernels", "blocks", "models", "bundle")},
    **{
        (f"profile {c}", o): v
        for c in ("kernels", "blocks", "models", "calibration")
        for o, v in {
            "--variant": lambda: const("hwlat.profiler.storage.store:VARIANTS"),
            "--quantize": lambda: const("hwlat.profiler.export.tflite:QUANTIZE_MODES"),
        }.items()
    },
    ("profile bundle", "granularity"): lambda: tuple(
        f"{g}s" for g in const("hwlat.archs.pieces:GRANULARITIES")
    ),
}

# options whose default is the CLI's own, not a library value
CLI_ONLY = {("demo", "--out"), ("dashboard serve", "--port"), ("netadapt", "--task"), ("search", "--task")}
FLAGS = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._HelpAction,
    argparse._SubParsersAction,
)


def leaves(parser: argparse.ArgumentParser, prefix: str = ""):
    """``(command, parser)`` of every parser below ``parser`` that runs a command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                command = f"{prefix} {name}".strip()
                if sub.get_default("func") is not None:
                    yield command, sub
                yield from leaves(sub, command)


def option_name(action: argparse.Action) -> str:
    long = [o for o in action.option_strings if o.startswith("--")]
    return (long or action.option_strings or [action.dest])[0]


def filled(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The namespace of a command line giving no option, with the command's library defaults filled."""
    ns = argparse.Namespace(**{a.dest: a.default for a in parser._actions if a.dest != "help"})
    return parser.get_default("func").fill(ns)


def problems(parser: argparse.ArgumentParser) -> list[str]:
    found, seen = [], set()
    for command, leaf in leaves(parser):
        ns = filled(leaf)
        for action in leaf._actions:
            if isinstance(action, FLAGS) or action.dest == "func":
                continue
            key = (command, option_name(action))
            seen.add(key)
            if action.default is not None and key not in CLI_ONLY:
                found.append(f"{key}: default {action.default!r} typed into the CLI")
            if key in DEFAULTS:
                want = DEFAULTS[key]()
                if action.default is not None or getattr(ns, action.dest) != want:
                    found.append(
                        f"{key}: {getattr(ns, action.dest)!r} (argparse default "
                        f"{action.default!r}), the library's is {want!r}"
                    )
            elif getattr(action, "library_default", None) is not None:
                found.append(f"{key}: a library default the table here does not name")
            if key in CHOICES:
                if action.choices is None or list(action.choices) != list(CHOICES[key]()):
                    found.append(
                        f"{key}: choices {action.choices!r}, the registry's are {list(CHOICES[key]())}"
                    )
            elif action.choices is not None:
                found.append(f"{key}: choices {list(action.choices)} the table here does not name")
    found += [f"{key}: no such option" for key in (set(DEFAULTS) | set(CHOICES) | CLI_ONLY) - seen]
    return found


def test_cli_defaults_and_choices_are_the_librarys():
    assert problems(build_parser()) == []


def test_a_literal_default_is_caught():
    p = build_parser()
    leaf = dict(leaves(p))["netadapt"]
    (act,) = [a for a in leaf._actions if "--long-steps" in a.option_strings]
    act.default = 200
    assert any("--long-steps" in x and "typed into the CLI" in x for x in problems(p))
    act.default = None
    act.library_default.ref = "hwlat.search.netadapt:NetAdaptConfig.short_steps"  # the wrong field
    assert any("--long-steps" in x and "the library's is" in x for x in problems(p))


def test_a_typed_out_choice_list_is_caught():
    p = build_parser()
    leaf = dict(leaves(p))["fit"]
    (act,) = [a for a in leaf._actions if "--kind" in a.option_strings]
    act.choices = ["madds", "lut"]
    assert any("--kind" in x for x in problems(p))


@pytest.mark.parametrize(
    "argv, dest, value",
    [
        (["netadapt", "x", "--predictor", "p", "--out", "o"], "long_steps", 300),  # the CLI's so far
        (["profile", "blocks", "--store", "s"], "repeats", 3),
        (
            ["demo", "compare", "--predictor", "p", "--out", "o", "--skip", "nas,uniform"],
            "skip",
            frozenset({"nas", "uniform"}),
        ),
        (
            ["demo", "compare", "--predictor", "p", "--out", "o", "--nas-controllers", "rl"],
            "controllers",
            ("rl",),
        ),
    ],
)
def test_parsed_values(argv, dest, value):
    args = build_parser().parse_args(argv)
    assert getattr(args.func.fill(args), dest) == value
