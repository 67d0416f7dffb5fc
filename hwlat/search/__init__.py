"""Search on predicted latency: the MnasNet reward, NetAdapt and platform-aware NAS, with real
accuracy evaluators (arXiv:1905.02244v5 Sec. 4).

- :mod:`hwlat.search.evaluators` — ``DigitsTask``, ``ImageFolderTask``, ``PublishedTable``
  (one protocol: ``evaluate(arch, model=None) -> accuracy``), training / fine-tuning.
- :mod:`hwlat.search.netadapt` — ``netadapt(seed_arch, seed_model, task, predictor, config, out_dir)``,
  proposals, L2-magnitude weight surgery (``inherit_weights``), resumable history.
- :mod:`hwlat.search.nas` — ``mnas_reward``, ``RLController`` / ``RegularizedEvolution`` /
  ``RandomSearch``, ``search(...)``, ``latency_function``.
- :mod:`hwlat.search.history` — run histories (``DIR/history.json``) and the run folder.
- :mod:`hwlat.search.parallel` — NAS candidates and NetAdapt proposals evaluated in parallel on Ray.
- :mod:`hwlat.cli.search` — ``add_parsers(sub)``: ``hwlat netadapt`` and ``hwlat search``.
"""

from hwlat.search.nas import (
    W_DEFAULT,
    W_SMALL,
    RandomSearch,
    RegularizedEvolution,
    RLController,
    latency_function,
    make_controller,
    mnas_reward,
    search,
)
from hwlat.search.netadapt import NetAdaptConfig, inherit_weights, netadapt

__all__ = [
    "W_DEFAULT",
    "W_SMALL",
    "RandomSearch",
    "RegularizedEvolution",
    "RLController",
    "latency_function",
    "make_controller",
    "mnas_reward",
    "search",
    "NetAdaptConfig",
    "inherit_weights",
    "netadapt",
]
