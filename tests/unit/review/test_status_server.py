"""Agreement statistics (known answers) and the server's PID handling."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cogvision.errors import UsageError
from cogvision.review.server import STATE_FILE, label_studio_binary, stop_server
from cogvision.review.status import krippendorff_alpha_nominal


def test_alpha_matches_krippendorffs_published_example() -> None:
    """Krippendorff (2011), 4 observers x 12 units with missing values: nominal alpha = 0.743."""
    none = None
    rows = [[1, 2, 3, 3, 2, 1, 4, 1, 2, none, none, none],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, none, 3],
            [none, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, none],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, none]]
    units = [[v for v in column if v is not None] for column in zip(*rows, strict=True)]
    assert krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b", "b"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None  # no variation
    assert krippendorff_alpha_nominal([["a"], []]) is None  # nothing pairable
    assert krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0  # systematic disagreement


def test_missing_binary_is_a_usage_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COGVISION_LABEL_STUDIO", str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="make install-labelstudio"):
        label_studio_binary()


def test_stop_never_kills_a_recycled_pid(tmp_path: Path) -> None:
    assert stop_server(tmp_path) is None
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        state = {"pid": other.pid, "url": "http://127.0.0.1:1", "port": 1, "data_dir": "d",
                 "log": "l"}
        (tmp_path / STATE_FILE).write_text(json.dumps(state))
        info = stop_server(tmp_path)
        assert info is not None and info.pid == other.pid
        assert other.poll() is None  # not label-studio: left alone
        assert not (tmp_path / STATE_FILE).exists()
    finally:
        other.kill()
        other.wait()
