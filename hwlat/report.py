"""Tables that put hwlat's analytic counts beside the paper's published numbers."""
from __future__ import annotations

import pandas as pd

from hwlat.archs import get_arch, summary
from hwlat.reference import table3


def zoo_vs_table3() -> pd.DataFrame:
    """Analytic MAdds/params of the zoo models in paper Table 3 (arXiv v5) beside the published ones.

    Columns: ``model``, ``multiplier``, ``zoo_name``, ``madds_M`` (conv+FC, ours), ``paper_madds_M``,
    ``madds_diff_pct``, ``elementwise_M`` (ours, not in the headline), ``params_M``,
    ``paper_params_M``, ``params_diff_pct``. Resolution 224.
    """
    rows = []
    for r in table3().itertuples(index=False):
        if not isinstance(r.zoo_name, str):
            continue
        s = summary(get_arch(r.zoo_name, resolution=224))
        rows.append({
            "model": r.model,
            "multiplier": r.multiplier,
            "zoo_name": r.zoo_name,
            "madds_M": s["madds"] / 1e6,
            "paper_madds_M": r.madds,
            "madds_diff_pct": 100 * (s["madds"] / 1e6 - r.madds) / r.madds,
            "elementwise_M": s["elementwise"] / 1e6,
            "params_M": s["params"] / 1e6,
            "paper_params_M": r.params,
            "params_diff_pct": 100 * (s["params"] / 1e6 - r.params) / r.params,
        })
    return pd.DataFrame(rows)
