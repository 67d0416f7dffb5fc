"""The self-contained HTML report: every figure of :mod:`hwlat.dashboards.figures` for each
(device, runtime) of a store, plotly.js embedded so the file works offline.

A section per (device, runtime) is chosen with a drop-down; inside, the Pareto figure has family
and Pixel-1 buttons, the per-block breakdown a drop-down over multiplier × resolution, and the
predictor-error figure a drop-down over predictors. Each section ends with "Inside the network,
measured": the per-op times of its whole networks (:meth:`Store.op_times`) placed on their layers
beside the first predictor's per-layer prediction, a drop-down over networks (per node type where
XNNPACK ran the network). Whatever lacks data (empty store, runtime not in the store, predictor
from another device, no runs folder, no op times) becomes a visible note, never a blank.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import jinja2
import pandas as pd
import plotly.graph_objects as go

from hwlat.dashboards import figures as F
from hwlat.dashboards import frames as D
from hwlat.files import atomic_write_text
from hwlat.profiler.analysis.anomalies import efficiency


def combine(figs: list[go.Figure], labels: list[str], title: str) -> go.Figure:
    """One figure showing ``figs[i]`` when ``labels[i]`` is picked in its drop-down menu.

    Layout (axes titles) comes from the first figure; each choice brings its own title and annotations.
    """
    if len(figs) == 1:
        return figs[0]
    out = go.Figure(layout=figs[0].layout)
    owner = []
    for i, f in enumerate(figs):
        for t in f.data:
            t.visible = i == 0 and t.visible is not False
            out.add_trace(t)
            owner.append(i)
    buttons = [
        {
            "label": lab,
            "method": "update",
            "args": [
                {"visible": [o == i for o in owner]},
                {
                    "title.text": f"{title} — {lab}",
                    "annotations": [a.to_plotly_json() for a in figs[i].layout.annotations],
                },
            ],
        }
        for i, lab in enumerate(labels)
    ]
    xtitles = [f.layout.xaxis.title.text for f in figs]
    if len(set(xtitles)) > 1:  # e.g. layers for one choice, node types for another
        for b, x in zip(buttons, xtitles):
            b["args"][1]["xaxis.title.text"] = x
    out.update_layout(
        title=f"{title} — {labels[0]}",
        updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.18, "xanchor": "right"}],
    )
    return out


def load_predictors(paths) -> tuple[dict, list[str]]:
    """Load predictor files once; returns ({label: predictor}, notes about files that failed)."""
    from hwlat.latency_models import load

    preds, notes = {}, []
    for p in paths:
        try:
            pred = load(p)
        except Exception as e:  # an unreadable file is a note, not a crash of the whole report
            notes.append(f"predictor {p}: cannot load ({e})")
            continue
        preds[f"{pred.kind} ({Path(p).name})"] = pred
    return preds, notes


def device_notes(preds: dict, fingerprint: dict | None, runtime: str) -> list[str]:
    """Warnings of ``check_device`` for each predictor used on ``fingerprint`` / ``runtime``."""
    notes = []
    if fingerprint is None:
        return notes
    for label, pred in preds.items():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            pred.check_device(fingerprint, runtime, strict=False)
        notes += [f"predictor {label}: {x.message}" for x in w]
    return notes


def _breakdown(frame: pd.DataFrame, points: pd.DataFrame, pred) -> go.Figure:
    """Per-block breakdown of every published V3 network, one drop-down entry each."""
    from hwlat.archs import decode

    figs, labels = [], []
    v3 = points[points["family"].isin(["large", "small"])].sort_values(["family", "multiplier", "resolution"])
    for r in v3.itertuples(index=False):
        arch = decode(r.arch, name=r.name)
        p = D.predicted_blocks(pred, arch)
        m = D.measured_blocks(frame, arch)
        if (p is None or p.empty) and m.empty:
            continue
        figs.append(F.layer_breakdown(p, m, title="Per-block latency"))
        labels.append(f"{r.family.title()} ×{r.multiplier:g} @{r.resolution}")
    if not figs:
        return F.note_figure(
            "Per-block latency",
            "No per-block data: no block measurements of the "
            "V3 networks in the store and no predictor given.",
        )
    return combine(figs, labels, "Per-block latency")


INSIDE_EMPTY = (
    "No per-op times of whole networks on this device: profile a phone over adb "
    "(hwlat profile models ... --adb --benchmark-model PATH; add --no-xnnpack for per-layer times) "
    "or import benchmark_model logs run with --enable_op_profiling=true "
    "(hwlat profile import-benchmark-log)."
)


def inside_figures(
    frame: pd.DataFrame, ops: pd.DataFrame | None, device: str, preds: dict
) -> list[go.Figure]:
    """The "Inside the network, measured" figures of one section: for each network of ``frame``
    with op times in ``ops`` (:meth:`Store.op_times`), one drop-down entry, its measured per-layer
    times beside the first of ``preds``' ``predict_layers`` with the layers it gets most wrong, or,
    where no op can be placed on a layer (XNNPACK), its time per node type with a note saying so."""
    from hwlat.profiler.analysis.op_layers import UNPLACED

    title = f"{F.INSIDE_TITLE} on {device}"
    label, pred = next(iter(preds.items()), (None, None))
    inside = D.inside_layers(ops, frame, pred)
    if inside.empty:
        return [F.note_figure(title, INSIDE_EMPTY)]
    types = D.inside_node_types(ops, frame)
    figs, labels = [], []
    for key, g in inside.groupby("key", sort=False):
        if g.loc[g["layer"] != UNPLACED, "measured_ms"].notna().any():
            figs.append(F.inside_network(g, D.layer_disagreements(g), title, label or "predictor"))
        else:
            figs.append(F.node_type_breakdown(types[types["key"] == key], title))
        labels.append(str(g["network"].iloc[0]))
    return [combine(figs, labels, title)]


def section_figures(frame: pd.DataFrame, device: str, preds: dict, histories: dict) -> list[go.Figure]:
    """The figures of one (device, runtime) section, in report order."""
    models = D.models(frame)
    first = next(iter(preds.values()), None)
    points = D.pareto_points(models, first)
    errs = D.predictor_errors(models, preds)
    if "madds" not in {p.kind for p in preds.values()} and len(models) >= 2:
        from hwlat.archs import decode
        from hwlat.latency_models import make_predictor

        base = make_predictor("madds").fit(
            [decode(a, name=n) for a, n in zip(models["arch"], models["name"])],
            models["latency_ms"].to_numpy(),
        )
        errs = pd.concat([errs, D.predictor_errors(models, {"madds baseline (fitted here)": base})])
    if errs.empty:
        err_fig = F.predictor_error(errs)
    else:
        labels = ["all", *dict.fromkeys(errs["predictor"])]
        err_fig = combine(
            [F.predictor_error(errs if lab == "all" else errs[errs["predictor"] == lab]) for lab in labels],
            labels,
            "Predictor error",
        )
    hist = [F.search_trajectory(h, title=f"Search trajectory: {name}") for name, h in histories.items()]
    return [
        F.pareto(points, device),
        F.madds_latency(models, device),
        _breakdown(frame, points, first),
        err_fig,
        *(hist or [F.search_trajectory(None)]),
        F.ablation_deltas(D.ablations(models, first), device),
        F.task_latency(D.task_points(models, first), D.reduced_tail(models, first), device),
        F.op_efficiency(efficiency(frame), device),
    ]


def _same_device(preds: dict, fingerprint: dict) -> dict:
    """The predictors of ``preds`` fitted on the device of ``fingerprint`` (an imported device's
    section uses only those, as :func:`hwlat.dashboards.devices.imported_figures` does)."""
    from hwlat.profiler.storage.device import device_key

    key = device_key(fingerprint)
    return {
        lab: p
        for lab, p in preds.items()
        if getattr(p, "fingerprint_", None) and device_key(p.fingerprint_) == key
    }


def _inside_section(frame: pd.DataFrame, ops: pd.DataFrame, device: str, preds: dict) -> dict:
    """The "Inside the network, measured" part of a section (:func:`inside_figures`)."""
    return {"title": F.INSIDE_TITLE, "notes": [], "figures": inside_figures(frame, ops, device, preds)}


def render_report(notes: list[str], sections: list[dict]) -> str:
    """The report's HTML from the template ``templates/report.html.j2``.

    ``sections``: dicts with ``id``, ``device`` (label), ``notes`` and ``figures`` (plotly figures;
    plotly.js is embedded once, with the first figure), and optionally ``subsections``: dicts with
    ``title``, ``notes`` and ``figures``, shown after them under their own heading. Text is
    escaped, figure HTML is not.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hwlat.dashboards", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    first = True

    def html(figures: list[go.Figure]) -> list[str]:
        nonlocal first
        out = []
        for fig in figures:
            out.append(
                fig.to_html(
                    full_html=False, include_plotlyjs=first, config={"responsive": True, "displaylogo": False}
                )
            )
            first = False
        return out

    rendered = []
    for sec in sections:
        figs = html(sec["figures"])  # first: plotly.js goes with the page's first figure
        subs = [{**sub, "figures": html(sub["figures"])} for sub in sec.get("subsections", ())]
        rendered.append({**sec, "figures": figs, "subsections": subs})
    return env.get_template("report.html.j2").render(notes=notes, sections=rendered)


def build_report(
    store, predictor_paths=(), runs_dir=None, out="report.html", runtime=None, device=None, notes=()
) -> Path:
    """Write the HTML report of ``store`` (path or :class:`Store`) and return its path.

    Parameters
    ----------
    store : str, Path or Store
        The measurement store (opened read-only: never created or modified).
    predictor_paths : sequence of paths
        Predictor JSON files; the first one also draws the predicted Pareto points, breakdowns and
        ablations. A predictor fitted on another device or runtime is used with a note.
    runs_dir : path, optional
        Folder of NetAdapt/NAS history JSON files; missing or empty gives a note.
    out : path
        The HTML file to write (plotly.js embedded, no network access needed).
    runtime : str, optional
        Only this runtime (``litert``, ``onnxruntime``, ``torch``); default every runtime stored.
    device : str, optional
        Only this device (a name or a device key, :mod:`hwlat.profiler.storage.device_select`).
    notes : sequence of str
        Lines shown first, e.g. which stages of a run did not finish.
    """
    from hwlat.profiler.storage.store import open_store

    with open_store(store, readonly=True) as st:
        frame, devices, ops = st.frame(), st.devices(), st.op_times()
    notes = list(notes)
    if device is not None:
        from hwlat.profiler.storage.device_select import select_device

        frame = frame[frame["device_key"] == select_device(devices, device, str(store))["device_key"]]
    if frame.empty:
        notes.append(
            f"The store {store} holds no measurements" + (f" of device {device!r}." if device else ".")
        )
    if runtime is not None:
        if not (frame["runtime"] == runtime).any():
            notes.append(
                f"The store has no {runtime} measurements (it has: "
                f"{', '.join(sorted(frame['runtime'].unique())) or 'none'})."
            )
        frame = frame[frame["runtime"] == runtime]
    if runs_dir is not None and not Path(runs_dir).is_dir():
        notes.append(f"Runs folder {runs_dir} does not exist: no search trajectories.")
    hists = D.histories(runs_dir)
    preds, lnotes = load_predictors(predictor_paths)
    notes += lnotes
    groups = list(frame.groupby(["device_key", "runtime"], sort=True)) or [((None, runtime or "none"), frame)]
    sections = []
    for (key, rt), g in groups:
        fp = None
        if key is not None:
            fp = json.loads(devices.set_index("device_key").loc[key, "fingerprint"])
        device = f"{g['device'].iloc[0]} · {rt}" if key is not None else "this device"
        if fp is not None and fp.get("imported"):  # measured elsewhere, end to end only
            from hwlat.dashboards.devices import imported_figures

            sections.append(
                {
                    "id": f"s{len(sections)}",
                    "device": device,
                    "notes": [f"Imported from a table: {fp.get('source') or 'unknown source'}."],
                    "figures": imported_figures(g, fp, device, preds),
                    "subsections": [_inside_section(g, ops, device, _same_device(preds, fp))],
                }
            )
            continue
        local = {lab: p for lab, p in preds.items() if not (p.fingerprint_ or {}).get("imported")}
        pnotes = device_notes(local, fp, rt)
        sections.append(
            {
                "id": f"s{len(sections)}",
                "device": device,
                "notes": pnotes,
                "figures": section_figures(g, device, local, hists),
                "subsections": [_inside_section(g, ops, device, local)],
            }
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, render_report(notes, sections))
