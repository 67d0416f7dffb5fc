"""Plotly dashboards (not built yet): accuracy–latency Pareto curves, per-layer breakdowns,
predictor error and search trajectories, as a self-contained HTML report and a local app."""
