"""Platform-aware NAS over the block-wise search space with the MnasNet reward (arXiv:1905.02244v5
Sec. 4.1; MnasNet, Tan et al. 2019, Eq. 2).

``reward = ACC(m) · (LAT(m)/TAR)^w`` with ``w = −0.07`` (``−0.15`` for the small models): the soft
constraint applies ``w`` on both sides of the target; the hard form uses ``α = 0`` below the target
and ``β = −1`` above it (MnasNet's hard constraint).

Three controllers share one interface (:class:`Controller`: ``propose(n, rng)`` / ``update``):
:class:`RLController` (an LSTM over the choice positions trained with REINFORCE and a
moving-average baseline, the paper's method), :class:`RegularizedEvolution` and
:class:`RandomSearch`. :func:`search` runs one with an explicit ``numpy.random.Generator``, a
budget of candidates, a callback and a resumable history; latency is predicted one batch at a time
(``compile_space`` when the predictor allows it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from hwlat.archs import ArchSpec, SearchSpace, encode
from hwlat.errors import FileFormatError
from hwlat.search import history as H

W_DEFAULT = -0.07  # MnasNet; arXiv:1905.02244v5 Sec. 4.1
W_SMALL = -0.15  # MobileNetV3-Small search, same section
REWARD_FORMS = ("soft", "hard")  # mnas_reward's form: the soft exponent w, or the hard constraint
# A search run unless told otherwise (``hwlat search``): controller, candidates, space, training
# steps of each candidate's accuracy proxy.
DEFAULT_CONTROLLER = "rl"
DEFAULT_BUDGET = 200
DEFAULT_SPACE = "small"
DEFAULT_TRAIN_STEPS = 20


def mnas_reward(acc, lat_ms, target_ms: float, w: float = W_DEFAULT, form: str = "soft"):
    """``ACC·(LAT/TAR)^w`` (``form="soft"``), or the hard form (exponent 0 at or below the target,
    −1 above). Works on scalars and arrays."""
    if target_ms <= 0:
        raise ValueError(f"target latency must be positive, got {target_ms}")
    acc, lat = np.asarray(acc, dtype=float), np.asarray(lat_ms, dtype=float)
    ratio = lat / target_ms
    if form == "soft":
        r = acc * ratio**w
    elif form == "hard":
        r = acc * np.where(lat <= target_ms, 1.0, ratio**-1.0)
    else:
        raise ValueError(f"reward form must be 'soft' or 'hard', got {form!r}")
    return float(r) if r.ndim == 0 else r


@contextlib.contextmanager
def one_thread():
    """Run small torch work on one thread (faster and reproducible on a busy machine)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Controller:
    """Proposes choice vectors of ``space`` and learns from their rewards.

    ``asynchronous`` controllers learn from each candidate as it finishes, so a parallel search
    proposes a new one whenever a worker is free; the others propose and learn a batch at a time.
    """

    name = "base"
    asynchronous = False

    def __init__(self, space: SearchSpace):
        self.space = space

    def propose(self, n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def update(self, vectors: Sequence[tuple[int, ...]], rewards: np.ndarray) -> None:
        pass


class RandomSearch(Controller):
    name = "random"

    def propose(self, n, rng):
        return [self.space.sample(rng) for _ in range(n)]


class RegularizedEvolution(Controller):
    """Aging evolution (Real et al. 2019): tournament of ``sample`` from a FIFO population of
    ``population``; the winner is mutated; the oldest member dies."""

    name = "evolution"
    asynchronous = True

    def __init__(self, space, population: int = 20, sample: int = 5, mutations: int = 1):
        super().__init__(space)
        self.population, self.sample, self.mutations = population, sample, mutations
        self.pop: list[tuple[tuple[int, ...], float]] = []

    def propose(self, n, rng):
        out = []
        for _ in range(n):
            if len(self.pop) < self.population:
                out.append(self.space.sample(rng))
            else:
                idx = rng.choice(len(self.pop), size=min(self.sample, len(self.pop)), replace=False)
                parent = max((self.pop[i] for i in idx), key=lambda p: p[1])[0]
                out.append(self.space.mutate(parent, rng, n=self.mutations))
        return out

    def update(self, vectors, rewards):
        for v, r in zip(vectors, rewards):
            self.pop.append((tuple(v), float(r)))
            if len(self.pop) > self.population:
                self.pop.pop(0)


class _Policy(nn.Module):
    def __init__(self, dims: Sequence[int], hidden: int):
        super().__init__()
        self.dims = list(dims)
        self.offsets = np.concatenate([[0], np.cumsum(self.dims)])[:-1].tolist()
        self.embed = nn.Embedding(int(sum(self.dims)) + 1, hidden)  # last index: start token
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, d) for d in self.dims)


class RLController(Controller):
    """An LSTM emits one choice per position of the space; REINFORCE with a moving-average
    baseline (decay ``baseline_decay``) and Adam (``lr``). Sampling uses the numpy ``rng``."""

    name = "rl"

    def __init__(
        self,
        space,
        hidden: int = 32,
        lr: float = 0.02,
        baseline_decay: float = 0.9,
        entropy: float = 1e-3,
        seed: int = 0,
    ):
        super().__init__(space)
        torch.manual_seed(seed)
        self.policy = _Policy(space.dims, hidden)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.baseline: float | None = None
        self.decay, self.entropy = baseline_decay, entropy

    def _run(self, n: int, vectors: np.ndarray | None, rng: np.random.Generator | None):
        p = self.policy
        tok = torch.full((n,), int(sum(p.dims)), dtype=torch.long)
        h = c = torch.zeros(n, p.cell.hidden_size)
        logp, ent, chosen = torch.zeros(n), torch.zeros(n), []
        for i, d in enumerate(p.dims):
            h, c = p.cell(p.embed(tok), (h, c))
            lp = torch.log_softmax(p.heads[i](h), dim=-1)
            if vectors is None:
                cdf = np.cumsum(lp.detach().exp().double().numpy(), axis=1)
                u = rng.random(n)[:, None] * cdf[:, -1:]
                a = np.minimum((cdf < u).sum(1), d - 1)
            else:
                a = vectors[:, i]
            a_t = torch.as_tensor(a, dtype=torch.long)
            logp = logp + lp.gather(1, a_t[:, None])[:, 0]
            ent = ent - (lp.exp() * lp).sum(1)
            chosen.append(a)
            tok = a_t + p.offsets[i]
        return np.stack(chosen, 1), logp, ent

    def propose(self, n, rng):
        with torch.no_grad(), one_thread():
            a, _, _ = self._run(n, None, rng)
        return [tuple(int(x) for x in row) for row in a]

    def update(self, vectors, rewards):
        rewards = np.asarray(rewards, dtype=float)
        adv = []
        for r in rewards:  # the baseline moves with every sample, in order
            self.baseline = r if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * r
            adv.append(r - self.baseline)
        with one_thread():
            _, logp, ent = self._run(len(rewards), np.asarray(vectors, dtype=int), None)
            loss = -(torch.as_tensor(adv, dtype=torch.float32) * logp).mean() - self.entropy * ent.mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()


CONTROLLERS: dict[str, type[Controller]] = {
    c.name: c for c in (RandomSearch, RegularizedEvolution, RLController)
}
"""The controllers by name (:attr:`Controller.name`), simplest first: what :func:`make_controller`
builds, ``--controller`` offers and ``hwlat demo compare`` runs."""


def make_controller(name: str, space: SearchSpace, seed: int = 0, **kw) -> Controller:
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; choose from {', '.join(CONTROLLERS)}")
    if name == "rl":
        kw.setdefault("seed", seed)
    return CONTROLLERS[name](space, **kw)


class LatencyFunction:
    """Batch latency (ms) of choice vectors of ``space``; ``path`` says how it is computed:
    ``"compiled"`` (the space's table, :func:`~hwlat.latency_models.space_table.compile_space`,
    for block-level predictors) or ``"predict_many"`` (decode each vector, one call per batch)."""

    def __init__(self, predictor, space: SearchSpace):
        from hwlat.latency_models.space_table import compilable, compile_space

        self.predictor, self.space = predictor, space
        self.path = "compiled" if compilable(predictor) else "predict_many"
        self._table = compile_space(predictor, space) if self.path == "compiled" else None

    def __call__(self, vectors) -> np.ndarray:
        if self._table is not None:
            return np.asarray(self._table.predict(np.asarray(vectors, dtype=int)), dtype=float)
        return np.asarray(self.predictor.predict_many([self.space.decode(v) for v in vectors]), dtype=float)

    def describe(self) -> str:
        return (
            "latency from the compiled space table"
            if self.path == "compiled"
            else f"latency from {type(self.predictor).__name__}.predict_many per batch (the "
            f"predictor is not block-level, so the space cannot be compiled)"
        )


def latency_function(predictor, space: SearchSpace) -> LatencyFunction:
    """Batch latency (ms) of choice vectors (:class:`LatencyFunction`; see its ``path``)."""
    return LatencyFunction(predictor, space)


class Pool(Protocol):
    """Evaluates accuracies in parallel (:class:`hwlat.search.parallel.RayPool`): ``map`` keeps the
    order of ``archs``; ``submit`` / ``next_done`` serve asynchronous controllers."""

    workers: int

    def map(self, archs: Sequence[ArchSpec]) -> list[float]: ...

    def submit(self, arch: ArchSpec) -> int: ...

    def next_done(self) -> tuple[int, float]: ...


def search(
    space: SearchSpace,
    controller: Controller,
    accuracy: Callable,
    latency: Callable,
    target_ms: float,
    budget: int,
    rng: np.random.Generator,
    *,
    w: float = W_DEFAULT,
    form: str = "soft",
    batch: int = 10,
    out_dir: str | Path | None = None,
    callback: Callable[[dict], None] | None = None,
    meta: dict | None = None,
    pool: Pool | None = None,
) -> dict:
    """Evaluate ``budget`` candidates proposed by ``controller``; return the history dict.

    ``accuracy(arch) -> [0, 1]``; ``latency(vectors) -> ms array`` (see :func:`latency_function`).
    With ``out_dir`` the history is written atomically after every batch to ``DIR/history.json``
    and a rerun resumes (controller state is rebuilt by replaying the recorded candidates; the
    generator's state is restored).

    With a ``pool`` the accuracies are evaluated there, in parallel: a batch at a time (the same
    candidates and results as without it, for the same seed), or, for an asynchronous controller
    (regularized evolution) and a pool of several workers, one new candidate whenever a worker is
    free, recorded in the order they finish (the history is written after each).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    if target_ms <= 0:
        raise ValueError(f"target latency must be positive, got {target_ms}")
    mnas_reward(1.0, 1.0, 1.0, w, form)  # validates form
    settings = {
        "controller": controller.name,
        "target_ms": float(target_ms),
        "w": w,
        "form": form,
        "space": [list(map(int, space.dims)), space.resolution],
        **(meta or {}),
    }
    hpath = Path(out_dir) / "history.json" if out_dir is not None else None
    hist = H.read(hpath, "nas") if hpath else None
    if hist is not None:
        if hist["settings"] != settings:
            raise ValueError(
                f"{hpath}: holds another search (other controller, target or space); "
                "use another output folder or remove it"
            )
        _replay(hpath, hist, space, controller, rng, batch)
        hist["schema"] = H.SCHEMAS["nas"]  # a file of an older hwlat (a bare number) is rewritten as this one
    else:
        hist = {
            "schema": H.SCHEMAS["nas"],
            "kind": "nas",
            "settings": settings,
            "budget": budget,
            "candidates": [],
            "best": None,
            "rng_state": rng.bit_generator.state,
        }
        if hpath:
            H.out_dir(out_dir)
    hist["budget"] = budget
    run = _Run(
        hist, hpath, callback, lambda acc, lat: np.atleast_1d(mnas_reward(acc, lat, target_ms, w, form))
    )
    if pool is not None and controller.asynchronous and pool.workers > 1:
        _search_async(space, controller, latency, budget, rng, pool, run)
        return hist
    while len(hist["candidates"]) < budget:
        t0 = time.time()
        vs = controller.propose(min(batch, budget - len(hist["candidates"])), rng)
        lat = latency(vs)
        archs = [space.decode(v) for v in vs]
        acc = np.array(pool.map(archs) if pool is not None else [float(accuracy(a)) for a in archs])
        rew = run.reward(acc, lat)
        controller.update(vs, rew)
        run.record(vs, archs, lat, acc, rew, rng, time.time() - t0)
    return hist


class _Run:
    """The history of one search: records candidates, keeps the best, writes it, calls back."""

    def __init__(self, hist: dict, hpath: Path | None, callback, reward):
        self.hist, self.hpath, self.callback, self.reward = hist, hpath, callback, reward

    def record(self, vs, archs, lat, acc, rew, rng, seconds: float) -> None:
        hist, cands, recs = self.hist, self.hist["candidates"], []
        for v, a, ms, ac, r in zip(vs, archs, lat, acc, rew):
            rec = {
                "i": len(cands),
                "vector": [int(x) for x in v],
                "arch": encode(a),
                "predicted_ms": float(ms),
                "accuracy": float(ac),
                "reward": float(r),
            }
            cands.append(rec)
            recs.append(rec)
            if hist["best"] is None or rec["reward"] > hist["best"]["reward"]:
                hist["best"] = rec
        hist["rng_state"] = rng.bit_generator.state
        hist["seconds"] = hist.get("seconds", 0.0) + seconds
        if self.hpath:
            H.write(self.hpath, hist)
        if self.callback:
            self.callback({"done": len(cands), "budget": hist["budget"], "batch": recs, "best": hist["best"]})


def _search_async(space, controller, latency, budget, rng, pool, run: _Run) -> None:
    """Keep every worker busy: propose one candidate from the current state whenever one is free,
    learn from each as it finishes. Candidates in flight when interrupted are proposed anew."""
    cands, flying = run.hist["candidates"], {}
    t0 = time.time()
    while len(cands) < budget:
        while len(flying) < pool.workers and len(cands) + len(flying) < budget:
            v = controller.propose(1, rng)[0]
            arch = space.decode(v)
            flying[pool.submit(arch)] = (v, arch, float(latency([v])[0]))
        ticket, acc = pool.next_done()
        v, arch, lat = flying.pop(ticket)
        rew = run.reward(np.array([acc]), np.array([lat]))
        controller.update([v], rew)
        t1 = time.time()
        run.record([v], [arch], [lat], [acc], rew, rng, t1 - t0)
        t0 = t1


def _replay(
    hpath: Path, hist: dict, space: SearchSpace, controller: Controller, rng: np.random.Generator, batch: int
) -> None:
    """Rebuild the controller and generator state of a recorded search (checked: one-line errors)."""
    cands = hist["candidates"]
    for i, c in enumerate(cands):
        v = c["vector"]
        if len(v) != len(space.dims) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < d for x, d in zip(v, space.dims)
        ):
            raise FileFormatError(f"{hpath}: candidate {i} has a vector outside the space; {H.todo(hpath)}")
    try:
        rng.bit_generator.state = hist["rng_state"]
    except (ValueError, TypeError, KeyError):
        raise FileFormatError(f"{hpath}: damaged rng_state; {H.todo(hpath)}") from None
    for i in range(0, len(cands), batch):  # replay, batch by batch as they were recorded
        chunk = cands[i : i + batch]
        controller.update([tuple(c["vector"]) for c in chunk], np.array([c["reward"] for c in chunk]))


class CachedAccuracy:
    """Memoise an evaluator by architecture codec (search spaces revisit candidates)."""

    def __init__(self, evaluate: Callable):
        self.evaluate, self.cache = evaluate, {}

    def __call__(self, arch):
        k = encode(arch)
        if k not in self.cache:
            self.cache[k] = float(self.evaluate(arch))
        return self.cache[k]
