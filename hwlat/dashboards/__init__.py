"""Plotly dashboards: the paper's accuracy–latency views on the user's own device.

* :mod:`~hwlat.dashboards.frames` — tables from a store, predictors and the paper's published numbers
  (Pareto points, block measurements, predictor errors, ablation deltas, search histories);
* :mod:`~hwlat.dashboards.figures` — pure functions from those tables to plotly Figures; empty data
  gives a figure with a visible note, never a blank plot;
* :mod:`~hwlat.dashboards.report` — :func:`build_report`, one self-contained HTML file (plotly.js
  embedded, works offline);
* :mod:`~hwlat.dashboards.app` — the local Dash app (latency budget, click for the blocks);
* :mod:`~hwlat.cli.dashboards` — ``hwlat dashboard build|serve`` (``add_parsers(sub)``);

Latencies are milliseconds, MAdds conv + FC multiply-adds; top-1 is always the published accuracy.
"""

__all__ = ["build_report"]


def __getattr__(name):  # lazy: ``hwlat dashboard`` parsing must not import plotly and pandas
    if name == "build_report":
        from hwlat.dashboards.report import build_report

        return build_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
