"""Run counters: rates, percentiles, the progress line."""

from __future__ import annotations

import io

import pytest

from p3m_live.stats import Latencies, Progress, RateMeter, StageClock


def test_rate_meter_counts_a_sliding_window():
    m = RateMeter(window=2.0, start=0.0)
    for i in range(30):
        m.tick(i / 30)  # 30 events in the first second
    assert m.rate(1.0) == pytest.approx(30.0)  # only one second has passed
    for i in range(60):
        m.tick(1 + i / 60)
    assert m.rate(2.0) == pytest.approx(45.0)
    assert m.rate(10.0) == 0.0


def test_latency_percentiles():
    lat = Latencies()
    for v in range(1, 101):
        lat.add(v / 1000)
    assert lat.percentile(50) == pytest.approx(0.0505)
    assert lat.percentile(95, last=10) == pytest.approx(0.09955)


def test_stage_clock_counts_work_even_when_it_fails():
    clock = StageClock("x")
    with pytest.raises(ValueError), clock.working():
        raise ValueError
    assert clock.calls == 1 and clock.busy >= 0


def test_progress_line_has_fps_and_time_left():
    out = io.StringIO()
    p = Progress(total=100, stream=out, interval=0)
    p.t0 -= 10.0  # ten seconds in
    p.update(50)
    line = out.getvalue()
    assert "50/100 frames" in line and "5.0 fps" in line and "0:00:10 left" in line
    p.finish(100)
    assert out.getvalue().count("\n") == 2  # not a terminal: one line per update
