"""What every benchmark records: device, versions, git revision; percentiles; answer F1.
Input files are read with ``blendcache.readers``."""

from __future__ import annotations

import collections
import json
import platform
import re
import string
import subprocess
from pathlib import Path

import torch


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str = "cpu") -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"cpu: {cpu_name()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def run_record(options: dict, *, device: str, dtype: str, model: str | None) -> dict:
    """What a result file records of its run: git revision, device, dtype, model, library
    versions and every option it was run with (``vars(args)``, callables left out)."""
    return {
        "git": git_revision(), "device": device, "dtype": dtype, "model": model,
        "torch": torch.__version__, "python": platform.python_version(),
        "options": {k: v for k, v in options.items() if not callable(v)},
    }


def write_result(path: str | Path, result: dict, options: dict, *, device: str, dtype: str,
                 model: str | None) -> None:
    """``result`` as JSON at ``path``, with its run record (``run_record``) under ``"run"``."""
    record = run_record(options, device=device, dtype=dtype, model=model)
    Path(path).write_text(json.dumps({**result, "run": record}, indent=2) + "\n",
                          encoding="utf-8")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(torch.quantile(torch.tensor(values, dtype=torch.float64), q / 100).item())


def median(values: list[float]) -> float:
    return percentile(values, 50)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(pred) & collections.Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_f1(prediction: str, answers: list[str]) -> float:
    return max((token_f1(prediction, a) for a in answers), default=0.0)
