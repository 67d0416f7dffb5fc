"""Training work on Ray: NAS candidates and NetAdapt proposals evaluated in parallel.

Each evaluation is a plain Ray task with ``num_cpus=1`` (the task trains on one torch thread).
The task object (dataset and training settings) goes to the object store once, and every seed is
passed in, so a parallel run computes exactly what the serial one does. Ray retries a task whose
worker died (``max_retries``); with the same seed the retry gives the same result.

Connect first with :func:`hwlat.profiler.measure.farm.connect` (an address, or a local cluster).
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence

from hwlat.archs import ArchSpec, encode
from hwlat.errors import ClusterError
from hwlat.profiler.measure.farm import require_ray

MAX_RETRIES = 3


def _evaluate(task, arch: ArchSpec, seed: int) -> tuple[float, str]:
    """Train ``arch`` from scratch with ``seed`` and return (validation accuracy, host)."""
    return float(task.accuracy(task.train(arch, seed=seed))), socket.gethostname()


def _fine_tune(
    task,
    state: dict,
    old: ArchSpec,
    new: ArchSpec,
    steps: int,
    inherit_seed: int,
    seed: int,
    desc: str,
    lr: float | None = None,
) -> tuple[float, dict, str]:
    """NetAdapt's short-term step for one proposal: ``new`` inherits the largest-L2 filters of the
    model ``state`` of ``old``, is fine-tuned ``steps`` with ``seed``; returns (accuracy, weights,
    host)."""
    from hwlat.archs.torch_builder import build_torch
    from hwlat.search.netadapt import inherit_weights

    model = build_torch(old)
    model.load_state_dict(state)
    model.eval()
    net = inherit_weights(model, old, new, seed=inherit_seed)
    task.fine_tune(net, steps, seed=seed, lr=lr, desc=desc)
    return float(task.holdout_accuracy(net)), net.state_dict(), socket.gethostname()


class RayPool:
    """Evaluates candidates of one task on the connected Ray cluster, ``workers`` at a time.

    ``map(archs)`` returns their accuracies in order; ``submit(arch)`` / ``next_done()`` serve
    asynchronous controllers. Accuracies are memoised by architecture (search spaces revisit
    candidates). ``progress`` shows a bar of finished evaluations with the running ones and the
    hosts they run on.
    """

    def __init__(self, task, workers: int | None = None, progress: bool = True, desc: str = "train"):
        from tqdm import tqdm

        ray = require_ray()
        if not ray.is_initialized():
            raise ClusterError("not connected to Ray: call hwlat.profiler.measure.farm.connect() first")
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise ClusterError("the Ray cluster offers no CPU to train on (ray start --num-cpus N)")
        self.ray, self.task = ray, task
        self.workers = int(workers or cpus)
        self.seed = int(getattr(task, "seed", 0))
        self._task_ref = ray.put(task)
        self._evaluate = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_evaluate)
        self._fine_tune = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_fine_tune)
        self.cache: dict[str, float] = {}
        self._flying: dict = {}  # object ref -> (ticket, codec string)
        self._ready: deque = deque()  # (ticket, accuracy) known without a task
        self._hosts: dict = {}
        self._tickets = 0
        self.bar = tqdm(desc=desc, unit="net", disable=not progress, dynamic_ncols=True)

    # -- asynchronous ------------------------------------------------------------------------------
    def submit(self, arch: ArchSpec) -> int:
        """Start evaluating ``arch``; returns a ticket that :meth:`next_done` hands back."""
        self._tickets += 1
        code = encode(arch)
        if code in self.cache:
            self._ready.append((self._tickets, self.cache[code]))
        else:
            ref = self._evaluate.remote(self._task_ref, arch, self.seed)
            self._flying[ref] = (self._tickets, code)
            self._show()
        return self._tickets

    def next_done(self) -> tuple[int, float]:
        """``(ticket, accuracy)`` of the next evaluation to finish (waits for one)."""
        if self._ready:
            return self._ready.popleft()
        if not self._flying:
            raise RuntimeError("next_done() with nothing submitted")
        ready, _ = self.ray.wait(list(self._flying), num_returns=1)
        ticket, code = self._flying.pop(ready[0])
        acc, host = self.ray.get(ready[0])
        self.cache[code] = acc
        self._hosts[host] = self._hosts.get(host, 0) + 1
        self.bar.update(1)
        self._show()
        return ticket, acc

    # -- in order ------------------------------------------------------------------------------------
    def map(self, archs: Sequence[ArchSpec]) -> list[float]:
        """Accuracies of ``archs``, evaluated in parallel, in their order."""
        todo, order, got = deque(archs), [], {}
        while todo or len(got) < len(order):
            while todo and len(self._flying) < self.workers:  # at most one per worker at a time
                order.append(self.submit(todo.popleft()))
            ticket, acc = self.next_done()
            got[ticket] = acc
        return [got[t] for t in order]

    def fine_tune_many(
        self,
        model,
        old: ArchSpec,
        news: Sequence[ArchSpec],
        steps: int,
        inherit_seed: int,
        seed: int,
        descs: Sequence[str],
        lr: float | None = None,
    ) -> list[tuple[float, dict]]:
        """NetAdapt: each of ``news`` inherits from ``model`` (an ``old`` net) and is fine-tuned in
        parallel with the given seeds and learning rate (None: the task's); returns (holdout
        accuracy, state dict) per proposal, in order."""
        state = self.ray.put({k: v.detach().clone() for k, v in model.state_dict().items()})
        todo, refs, out = deque(zip(news, descs)), [], {}
        while todo or len(out) < len(refs):
            while todo and len(self._flying) < self.workers:
                new, desc = todo.popleft()
                refs.append(
                    self._fine_tune.remote(
                        self._task_ref, state, old, new, steps, inherit_seed, seed, desc, lr
                    )
                )
                self._flying[refs[-1]] = (None, desc)
            self._show()
            ready, _ = self.ray.wait(list(self._flying), num_returns=1)
            acc, weights, host = self.ray.get(ready[0])
            self._flying.pop(ready[0])
            self._hosts[host] = self._hosts.get(host, 0) + 1
            out[ready[0]] = (acc, weights)
            self.bar.update(1)
        self._show()
        return [out[r] for r in refs]

    def _show(self) -> None:
        hosts = ", ".join(f"{h} {n}" for h, n in sorted(self._hosts.items()))
        self.bar.set_postfix_str(
            f"running {len(self._flying)} of {self.workers}" + (f"; done on {hosts}" if hosts else "")
        )

    def close(self) -> None:
        """Cancel what is still running and close the bar."""
        for ref in list(self._flying):
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self._flying.clear()
        self.bar.close()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
