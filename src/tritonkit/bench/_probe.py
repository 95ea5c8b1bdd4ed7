"""The server side of a level: Triton's metrics before and after, and the local processes."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping

from tritonkit.client import MetricsSnapshot, ModelRates, TritonClientError, scrape

from ._local import ProcessSample, available_cores, load_average, machine_busy_ticks, sample_server
from ._results import MachineLoad, ModelFigures, ProcessFigures, ServerFigures


def _figures(rates: ModelRates) -> ModelFigures:
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return ModelFigures(
        model=rates.model,
        version=rates.version,
        role=rates.kind,
        requests=rates.successes,
        failures=rates.failures,
        executions=rates.executions,
        inferences=rates.inferences,
        avg_batch_size=r(rates.avg_batch_size),
        avg_request_ms=r(rates.avg_request_ms),
        avg_queue_ms=r(rates.avg_queue_ms),
        avg_compute_input_ms=r(rates.avg_compute_input_ms),
        avg_compute_infer_ms=r(rates.avg_compute_infer_ms),
        avg_compute_output_ms=r(rates.avg_compute_output_ms),
    )


class ServerProbe:
    """Takes the server's measure around one level: :meth:`begin`, :meth:`sample` while it
    runs (memory peaks), :meth:`end`."""

    def __init__(
        self,
        model: str,
        metrics_url: str | None,
        ensembles: Mapping[str, tuple[str, ...]],
        server_pid: int | None,
    ) -> None:
        self._model = model
        self._metrics_url = metrics_url
        self._ensembles = dict(ensembles)
        self._pid = server_pid
        self._before: MetricsSnapshot | None = None
        self._note: str | None = None
        self._cpu_before: dict[str, float] = {}
        self._peak_by_label: dict[str, tuple[float, float | None]] = {}
        self._peak_total: tuple[float, float | None] = (0.0, None)
        self._ticks_before: tuple[int, int] | None = None
        self._load_before: float | None = None
        self._started = 0.0
        self._last_sample = 0.0

    def _scrape(self) -> MetricsSnapshot | None:
        if self._metrics_url is None:
            self._note = "no metrics URL"
            return None
        try:
            return scrape(self._metrics_url, timeout_s=5.0, ensembles=self._ensembles)
        except TritonClientError as exc:
            self._note = f"metrics unavailable: {exc}"
            return None

    def _processes(self) -> list[ProcessSample]:
        return sample_server(self._pid) if self._pid is not None else []

    def begin(self) -> None:
        self._note = None
        self._before = self._scrape()
        samples = self._processes()
        self._cpu_before = _cpu_by_label(samples)
        self._peak_by_label = {}
        self._peak_total = (0.0, None)
        self._remember_memory(samples)
        self._ticks_before = machine_busy_ticks()
        self._load_before = load_average()
        self._started = self._last_sample = time.monotonic()

    def sample(self, every_s: float = 1.0) -> None:
        """Record memory peaks (at most every ``every_s``); cheap enough for the event loop."""
        now = time.monotonic()
        if self._pid is None or now - self._last_sample < every_s:
            return
        self._last_sample = now
        self._remember_memory(self._processes())

    def _remember_memory(self, samples: list[ProcessSample]) -> None:
        if not samples:
            return
        rss: dict[str, float] = defaultdict(float)
        pss: dict[str, float | None] = defaultdict(float)
        for sample in samples:
            rss[sample.label] += sample.rss_mib
            known = pss[sample.label]
            pss[sample.label] = None if sample.pss_mib is None or known is None else known + sample.pss_mib
        for label, value in rss.items():
            old_rss, old_pss = self._peak_by_label.get(label, (0.0, None))
            self._peak_by_label[label] = (max(old_rss, value), _peak(old_pss, pss[label]))
        total_pss = None if None in pss.values() else sum(v for v in pss.values() if v is not None)
        old_rss, old_pss = self._peak_total
        self._peak_total = (max(old_rss, sum(rss.values())), _peak(old_pss, total_pss))

    def machine_load(self) -> MachineLoad:
        busy = None
        after = machine_busy_ticks()
        if self._ticks_before is not None and after is not None:
            total = after[1] - self._ticks_before[1]
            if total > 0:
                busy = round((after[0] - self._ticks_before[0]) / total * available_cores(), 2)
        return MachineLoad(loadavg_start=self._load_before, loadavg_end=load_average(), busy_cores=busy)

    def end(self, requests: int) -> ServerFigures:
        """The server's figures since :meth:`begin`; ``requests`` is what the client completed."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        models: tuple[ModelFigures, ...] = ()
        after = self._scrape() if self._before is not None else None
        if self._before is not None and after is not None:
            rates = after.rates_since(self._before)
            try:
                top = rates.model(self._model)
            except KeyError:
                self._note = f"the metrics have no counters for {self._model!r}"
            else:
                models = (_figures(top), *(_figures(step) for step in top.steps))
        samples = self._processes()
        self._remember_memory(samples)
        cpu_after = _cpu_by_label(samples)
        processes = tuple(
            ProcessFigures(
                label=label,
                processes=sum(1 for s in samples if s.label == label),
                cpu_cores=round((cpu_after[label] - self._cpu_before.get(label, 0.0)) / elapsed, 3),
                cpu_ms_per_request=(
                    round((cpu_after[label] - self._cpu_before.get(label, 0.0)) * 1000 / requests, 3)
                    if requests
                    else None
                ),
                rss_mib=round(self._peak_by_label.get(label, (0.0, None))[0], 1),
                pss_mib=_round(self._peak_by_label.get(label, (0.0, None))[1]),
            )
            for label in cpu_after
        )
        rss, pss = self._peak_total
        return ServerFigures(
            models=models,
            processes=processes,
            rss_mib=round(rss, 1) if processes else None,
            pss_mib=_round(pss) if processes else None,
            note=self._note if self._pid is not None else _join(self._note, "server processes not local"),
        )


def _peak(old: float | None, new: float | None) -> float | None:
    """The larger of two readings, either of which may be missing."""
    if old is None or new is None:
        return new if old is None else old
    return max(old, new)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _join(*notes: str | None) -> str | None:
    text = "; ".join(n for n in notes if n)
    return text or None


def _cpu_by_label(samples: list[ProcessSample]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for s in samples:
        totals[s.label] += s.cpu_s
    return dict(totals)
